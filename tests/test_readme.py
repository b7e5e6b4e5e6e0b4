"""The README's Python examples name things that exist: every ``from temnb... import`` resolves, and
every ``module.attribute`` of a temnb module they import is there (the layout must not drift from
what the README teaches).  The examples themselves need the user's files, so they are not run here."""
from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def _references(code: str):
    """(import statement or attribute use, module name, attribute) for every temnb name in *code*."""
    tree = ast.parse(code)
    modules = {}  # local name -> temnb module
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "temnb":
            for alias in node.names:
                yield f"from {node.module} import {alias.name}", node.module, alias.name
                full = f"{node.module}.{alias.name}"
                if importlib.util.find_spec(node.module) and _is_module(full):
                    modules[alias.asname or alias.name] = full
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "temnb":
                    modules[alias.asname or alias.name.split(".")[0]] = alias.asname and alias.name or "temnb"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            yield f"{node.value.id}.{node.attr}", modules[node.value.id], node.attr


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_every_temnb_name_in_a_readme_example_exists(index):
    missing = []
    for where, module, attr in _references(BLOCKS[index]):
        if not hasattr(importlib.import_module(module), attr):
            missing.append(where)
    assert missing == [], f"README example {index + 1} names what temnb does not have: {missing}"


def test_the_check_can_fail():
    refs = list(_references("from temnb.nets import registry\nregistry.no_such_function()\n"))
    assert ("registry.no_such_function", "temnb.nets.registry", "no_such_function") in refs
    assert not hasattr(importlib.import_module("temnb.nets.registry"), "no_such_function")
