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


# --------------------------------------------------------------------------- the README's commands
def _bash_commands(prefix: str) -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith(prefix)]


@pytest.fixture
def readme_files(tmp_path, monkeypatch):
    """The files the README's examples name, as real files, in the folder the commands are typed in."""
    import shutil

    from temnb.io import bundled

    shutil.copy(bundled.real_path("dm4_stack_3d"), tmp_path / "movie.dm4")
    shutil.copy(bundled.real_path("random_scan_movie"), tmp_path / "movie.mrc")
    (tmp_path / "capture" / "Hour_00" / "Minute_00").mkdir(parents=True)
    shutil.copy(bundled.real_path("dm4_stack_3d"), tmp_path / "capture" / "Hour_00" / "Minute_00" / "f.dm4")
    yaml_block = re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)[0]
    (tmp_path / "my_parameters.yaml").write_text(re.sub(r"DATA: .*", "DATA: movie.dm4", yaml_block))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_readme_shows_temnb_run_commands():
    assert len(_bash_commands("temnb run")) >= 5


@pytest.mark.parametrize("command", _bash_commands("temnb run"))
def test_every_temnb_run_command_of_the_readme_plans_with_real_parameters(readme_files, command, capsys):
    """Each command, as written, with --check: the notebooks, parameter names and types and the
    paths it names are checked (nothing is run; the notebooks themselves run in test_real_data)."""
    import shlex

    from temnb.notebook import cli

    args = shlex.split(command)[1:]
    if "--check" not in args:
        args.append("--check")
    assert cli.main(args) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "nothing was run" in out
    if "DATA" in command or "-f" in args:
        assert str(readme_files) in out, "relative paths were made absolute from the current folder"


def test_the_readme_yaml_example_names_real_parameters_of_the_notebooks_it_addresses(readme_files):
    from temnb.notebook.run import plan_series

    plan = plan_series(parameters_file="my_parameters.yaml")
    assert plan["02_poisson_statistics"]["DOSES"] == [0.15, 0.45, 1.5, 5.0]
    assert plan["06_surface_structure"]["FRAME"] == 3
    assert all(values["DATA"] == str(readme_files / "movie.dm4") for values in plan.values())


def test_the_readme_table_of_fewest_frames_is_the_packages():
    from temnb.notebook.data import MIN_FRAMES

    text = README.read_text(encoding="utf-8")
    table = dict(re.findall(r"^\| `(\d\d_\w+)` \| (\d+) \|", text, flags=re.M))
    first = re.search(r"^\| 00–(\d\d) \| (\d+) \|", text, flags=re.M)
    stated = {k: int(v) for k, v in table.items()}
    stated.update({k: int(first.group(2)) for k in MIN_FRAMES if int(k[:2]) <= int(first.group(1))})
    assert stated == {k: n for k, (n, _) in MIN_FRAMES.items()}
