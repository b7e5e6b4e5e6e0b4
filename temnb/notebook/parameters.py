"""A notebook's parameters, checked against the types its ``parameters`` cell declares.

Each notebook declares its parameters with annotations, ``FRAME: int = 0``,
``DOSES: list[float] = [...]``, ``MODEL: str | None = "bundled"``.  The same
declaration is checked twice:

* by ``temnb run`` before any kernel starts (:func:`declared_types` reads the cell
  with ``ast``; nothing in the notebook is executed), and
* inside the kernel, by the notebook's first cell (:func:`check_parameters`), so a
  run by papermill directly (``papermill 07_....ipynb out.ipynb -p FRAME banana``)
  stops there with the same message instead of deep inside numpy.

Only plain types are understood: ``int``, ``float``, ``str``, ``bool``, ``None``,
``list[X]``, ``dict``, ``X | Y`` and ``Literal[...]``.  An ``int`` is accepted for
a ``float`` (and converted); a ``bool`` is never an ``int``.
"""
from __future__ import annotations

import ast
import json
import types
import typing
from pathlib import Path

from ..core.errors import ParameterError

__all__ = ["declared_types", "check_value", "check_parameters", "describe_type"]

_NAMES = {"int": int, "float": float, "str": str, "bool": bool, "None": None, "list": list,
          "dict": dict, "tuple": tuple, "Literal": typing.Literal, "Optional": typing.Optional}


def _evaluate(node: ast.expr, where: str):
    """The annotation *node* as a typing object, from the names above only (no code is run)."""
    try:
        return eval(compile(ast.Expression(node), where, "eval"), {"__builtins__": {}}, dict(_NAMES))  # noqa: S307
    except Exception as exc:  # an annotation naming something else: a mistake in the notebook
        raise ParameterError(f"{where}: cannot read the annotation {ast.unparse(node)!r} ({exc})",
                             hint="annotate parameters with int, float, str, bool, None, list[...], "
                                  "X | Y or Literal[...]") from None


def parameters_cell(notebook):
    """The parsed (``ast``) ``parameters`` cell of *notebook*: a Module, None when it has no such
    cell, or SyntaxError's text when the cell does not parse."""
    path = Path(notebook)
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            try:
                return ast.parse(source)
            except SyntaxError as exc:
                return str(exc)
    return None


def declared_types(notebook) -> dict:
    """``{name: type}`` for the annotated assignments of *notebook*'s ``parameters`` cell."""
    tree = parameters_cell(notebook)
    if not isinstance(tree, ast.Module):
        return {}
    return {node.target.id: _evaluate(node.annotation, f"{Path(notebook).name}, parameter {node.target.id}")
            for node in tree.body if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)}


def describe_type(annotation) -> str:
    """``list[float]``, ``str | None``, ``'smoke' | 'workshop'``: as a reader would write it."""
    if annotation is None or annotation is type(None):
        return "None"
    if isinstance(annotation, type):
        return annotation.__name__
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(describe_type(a) for a in args)
    if origin is not None:
        return f"{origin.__name__}[{', '.join(describe_type(a) for a in args)}]"
    return str(annotation)


_NO = object()


def _convert(value, annotation):
    """*value* as *annotation* wants it, or ``_NO``."""
    if annotation is None or annotation is type(None):
        return value if value is None else _NO
    if annotation is typing.Any:
        return value
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return value if any(value == a and type(value) is type(a) for a in args) else _NO
    if origin in (typing.Union, types.UnionType):
        for option in args:
            converted = _convert(value, option)
            if converted is not _NO:
                return converted
        return _NO
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return _NO
        if not args:
            return list(value) if origin is list else tuple(value)
        item_types = args if origin is tuple and len(args) > 1 and args[-1] is not Ellipsis else None
        if item_types is not None:
            if len(item_types) != len(value):
                return _NO
            items = [_convert(v, t) for v, t in zip(value, item_types)]
        else:
            items = [_convert(v, args[0]) for v in value]
        if any(item is _NO for item in items):
            return _NO
        return items if origin is list else tuple(items)
    if origin is dict or annotation is dict:
        return value if isinstance(value, dict) else _NO
    if annotation is bool:
        return value if isinstance(value, bool) else _NO
    if annotation is int:
        if isinstance(value, bool):
            return _NO
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return _NO
    if annotation is float:
        if isinstance(value, bool):
            return _NO
        return float(value) if isinstance(value, (int, float)) else _NO
    if annotation is str:
        return value if isinstance(value, str) else _NO
    if isinstance(annotation, type):
        return value if isinstance(value, annotation) else _NO
    return value


def check_value(name: str, value, annotation, *, notebook: str | None = None):
    """*value* converted to the declared type (``1`` -> ``1.0`` for a float), or a ParameterError
    naming the parameter, the type expected and the value given."""
    converted = _convert(value, annotation)
    if converted is _NO:
        where = f" of {notebook}" if notebook else ""
        raise ParameterError(
            f"parameter {name}{where} must be {describe_type(annotation)}, "
            f"got {value!r} ({type(value).__name__})",
            hint=f"give {name} as {describe_type(annotation)}; -p values are read as YAML "
                 "(8 is a number, [1, 2] a list, true a bool, anything else text)")
    return converted


def check_parameters(namespace: dict, *, notebook: str | None = None) -> dict:
    """Check (and convert) every annotated parameter in *namespace* (a notebook's ``globals()``).

    The notebook's first cell calls this after papermill's injected cell: the
    annotations of the ``parameters`` cell stay in ``__annotations__`` while the
    injected assignments replace the values.  Returns ``{name: value}``.
    """
    annotations = namespace.get("__annotations__", {}) or {}
    checked = {}
    for name, annotation in annotations.items():
        if name.startswith("_") or name not in namespace:
            continue
        checked[name] = check_value(name, namespace[name], annotation, notebook=notebook)
        namespace[name] = checked[name]
    return checked
