"""The package layout: subpackages that read as the pipeline, no import circles, lower stages only.

The import graph is read from the source (every ``import`` and ``from ... import``, also those
inside functions: a deferred import that closes a circle is still a wrong cut), so the test needs
no heavy library and names the modules of any circle it finds.
"""
from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import temnb

PACKAGE = Path(temnb.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path) -> set[str]:
    """The temnb modules *name* imports, anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            candidates = [target] + [f"{target}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        found.update(c for c in candidates if c in MODULES and c != name)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles(graph: dict) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_the_cycle_finder_finds_a_cycle():
    # The check must be able to fail: a made-up circle of three modules, and a clean chain.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_module_imports_in_a_circle():
    assert _cycles(GRAPH) == [], "modules that import each other are one module or a wrong cut"


def test_every_module_lives_in_a_stage():
    flat = [name for name in MODULES if name.count(".") == 1 and name.split(".")[1] not in temnb.STAGES]
    assert flat == [], f"modules outside the subpackages of the pipeline: {flat}"
    assert set(temnb.STAGES) == {_stage(n) for n in MODULES if _stage(n)}


def test_each_stage_imports_only_from_lower_stages():
    order = {stage: i for i, stage in enumerate(temnb.STAGES)}
    wrong = []
    for module, imported in GRAPH.items():
        if _stage(module) is None:
            continue  # temnb/__init__.py: the public API reaches into every stage
        for target in imported:
            if _stage(target) is None or order[_stage(target)] > order[_stage(module)]:
                wrong.append(f"{module} -> {target}")
    assert wrong == [], "imports from a higher stage (or from the top-level package):\n" + "\n".join(sorted(wrong))


@pytest.mark.parametrize("stage", temnb.STAGES)
def test_each_subpackage_says_what_it_holds_and_may_import(stage):
    doc = importlib.import_module(f"temnb.{stage}").__doc__ or ""
    lines = [line for line in doc.strip().splitlines() if line.strip()]
    assert 1 <= len(lines) <= 3, f"temnb.{stage}: the docstring should say in three lines what it holds"
    assert "import" in doc.lower(), f"temnb.{stage}: the docstring should say what it may import"


def test_every_module_imports_on_its_own_in_a_fresh_interpreter():
    # One interpreter per module, so that no module works only because another was imported first.
    code = ("import subprocess, sys\n"
            "failed = []\n"
            "for name in sys.argv[1:]:\n"
            "    r = subprocess.run([sys.executable, '-c', f'import {name}'], capture_output=True, text=True)\n"
            "    if r.returncode:\n"
            "        failed.append(name + ': ' + r.stderr.strip().splitlines()[-1])\n"
            "print('\\n'.join(failed))\n")
    result = subprocess.run([sys.executable, "-c", code, *sorted(MODULES)], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", result.stdout


@pytest.mark.parametrize("stage", temnb.STAGES)
def test_modules_of_a_stage_are_reachable_from_temnb(stage):
    package = getattr(temnb, stage)
    for name in [m for m in MODULES if _stage(m) == stage and m.count(".") == 2]:
        assert getattr(package, name.rpartition(".")[2]).__name__ == name


def test_the_public_api_resolves():
    for name in temnb.__all__:
        assert getattr(temnb, name) is not None
    assert temnb.denoise.__module__ == "temnb.nets.inference"
    assert temnb.load.__module__ == "temnb.io.files"


def test_every_name_imported_inside_temnb_exists():
    # Deferred imports (inside functions) run only when their function does; check them all now.
    missing = []
    for name, path in MODULES.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not (node.level or (node.module or "").startswith("temnb")):
                continue
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            module = importlib.import_module(target)
            for alias in node.names:
                if not hasattr(module, alias.name) and f"{target}.{alias.name}" not in MODULES:
                    missing.append(f"{name}: from {target} import {alias.name}")
    assert missing == [], "\n".join(missing)
