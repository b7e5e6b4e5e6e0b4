"""Run the notebook series with papermill into a fresh run folder.

``run_series()`` executes ``notebooks/NN_*.ipynb`` in order, each with the
notebooks folder as working directory (so the notebooks' relative paths work),
and writes into a new folder ``runs/<YYYYmmdd-HHMMSS>/`` of the *current* folder
(or ``out_dir=``), never into the installed package:

* the executed notebooks (``NN_name.ipynb``) and HTML copies (``NN_name.html``),
* each notebook's recorded numbers (``<name>.json``, written by
  :class:`temnb.NotebookRun` because ``OUT_DIR`` is set to the run folder),
* ``results.json``: all of them merged, ``{notebook: {...}}``,
* ``skipped.json``: the notebooks that stopped in their first cell because the movie has fewer
  frames than they need (``TooFewFramesError``), with the reason; the series goes on without them.

Parameters file (YAML)
----------------------
Top-level ``NAME: value`` pairs go to every notebook that declares ``NAME`` in
its ``parameters`` cell; a top-level key that is a notebook's file name without
``.ipynb`` holds parameters for that notebook only::

    PRESET: workshop          # every notebook
    SEED: 1
    02_poisson_statistics:    # this notebook only
      N_FRAMES: 40

Precedence, lowest first: file (all notebooks) < file (this notebook) <
``preset=`` < ``parameters=`` (``-p`` on the command line).  ``OUT_DIR`` is
always the run folder and cannot be set.  A name that no notebook declares is
an error, so a typo does not silently run the defaults, and every value is checked
against the type the notebook's ``parameters`` cell declares (``FRAME: int = 0``)
before any notebook starts (:mod:`temnb.notebook.parameters`).

Paths given as parameters (``DATA``, ``MODEL``, ``REAL_IMAGE``, ``DARK_FRAME`` and
``*_DIR``) are read from the folder the command was typed in: a relative path is made
absolute there before the notebooks, which run in the notebooks folder, see it.
The bundled names (``sample``, ``bundled``, the real files' short names) stay as they are.
"""
from __future__ import annotations

import ast
import datetime as _dt
import json
import logging
import re
from pathlib import Path

from ..core.errors import MissingFileError, ParameterError, TemnbError
from .parameters import check_value, declared_types

__all__ = [
    "NotebookFailedError",
    "plan_series",
    "find_notebooks_dir",
    "list_notebooks",
    "select_notebooks",
    "parse_parameter_value",
    "read_parameters_file",
    "run_series",
]

_NOTEBOOK_RE = re.compile(r"^(\d+)_.+\.ipynb$")
_NUMBER_RE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
_RESERVED = "OUT_DIR"
_TOO_SHORT = "TooFewFramesError"   # a notebook's first cell: the movie has fewer frames than it needs
# Parameters holding paths, and the words that mean something bundled rather than a path.
_PATH_PARAMETERS = {"DATA", "MODEL", "REAL_IMAGE", "DARK_FRAME"}
_KEYWORDS = {"sample", "movie", "bundled", "notebook_05"}


class NotebookFailedError(TemnbError, RuntimeError):
    """A notebook of the series raised an error; the series stopped there."""

    def __init__(self, message, *, notebook: Path, run_dir: Path, hint=None):
        self.notebook = notebook
        self.run_dir = run_dir
        super().__init__(message, hint=hint)


def find_notebooks_dir(notebooks_dir=None) -> Path:
    """The folder holding the series: the given one, ./notebooks, the current folder, or the source checkout's."""
    if notebooks_dir is not None:
        path = Path(notebooks_dir)
        if not path.is_dir():
            raise MissingFileError("is not a folder", source=path, hint="pass the folder holding NN_*.ipynb")
        return path.resolve()
    cwd = Path.cwd()
    candidates = [cwd / "notebooks", cwd, Path(__file__).resolve().parents[2] / "notebooks"]
    for path in candidates:
        if path.is_dir() and list_notebooks(path):
            return path.resolve()
    raise MissingFileError(
        "no notebook series (NN_*.ipynb) found in ./notebooks or the current folder",
        hint="run from the repository root, or pass the folder (--notebooks-dir)",
    )


def list_notebooks(notebooks_dir) -> list[Path]:
    """The series' notebooks, ``NN_*.ipynb``, in number order."""
    found = [p for p in Path(notebooks_dir).iterdir() if p.is_file() and _NOTEBOOK_RE.match(p.name)]
    return sorted(found, key=lambda p: (int(_NOTEBOOK_RE.match(p.name).group(1)), p.name))


def select_notebooks(available: list[Path], selection=None) -> list[Path]:
    """Pick notebooks by number (``'02'``, ``2``) or name (``'02_poisson_statistics'``,
    ``'poisson_statistics'``, ``'notebooks/02_poisson_statistics.ipynb'``), in series order."""
    if not selection:
        return list(available)
    if isinstance(selection, (str, int, Path)):
        selection = [selection]
    names = ", ".join(p.stem for p in available) or "none"
    chosen = set()
    for item in selection:
        key = Path(str(item)).name.removesuffix(".ipynb")
        if key.isdigit():
            matches = [p for p in available if int(_NOTEBOOK_RE.match(p.name).group(1)) == int(key)]
        else:
            matches = [p for p in available if key in (p.stem, p.stem.split("_", 1)[1])]
        if not matches:
            raise ParameterError(f"no notebook {str(item)!r} in the series; available: {names}")
        if len(matches) > 1:
            raise ParameterError(f"{str(item)!r} matches several notebooks: {', '.join(p.stem for p in matches)}")
        chosen.add(matches[0])
    return [p for p in available if p in chosen]


def parse_parameter_value(text: str):
    """A ``-p NAME VALUE`` value as YAML would read it: ``8`` -> 8, ``true`` -> True,
    ``[1, 2]`` -> [1, 2], ``../data/x.hspy`` -> text.  ``1e-3`` is a float too
    (YAML 1.1, which PyYAML follows, would leave it text)."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and _NUMBER_RE.match(value.strip()):
        return float(value)
    return value


def _check_name(name, where: str) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise ParameterError(f"parameter name {name!r} in {where} is not a valid Python name")
    if name == _RESERVED:
        raise ParameterError(
            f"OUT_DIR cannot be set in {where}: it is always the run folder",
            hint="choose the run folder with out_dir= (temnb run --out DIR)",
        )
    return name


def read_parameters_file(path, available: list[Path]) -> tuple[dict, dict]:
    """Read a YAML parameters file into ``(for_all, {notebook_stem: for_that_one})``."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise MissingFileError("does not exist", source=path, hint="pass a YAML parameters file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ParameterError(f"is not valid YAML: {exc}", source=path) from None
    if not isinstance(data, dict):
        raise ParameterError("must be a mapping of NAME: value (and notebook: {NAME: value})", source=path)
    stems = {p.stem for p in available}
    for_all, per_notebook = {}, {}
    for key, value in data.items():
        key = str(key)
        if key in stems:
            if not isinstance(value, dict):
                raise ParameterError(f"section {key!r} must be a mapping of NAME: value", source=path)
            per_notebook[key] = {_check_name(str(k), f"{path} [{key}]"): v for k, v in value.items()}
        elif key.isidentifier():
            for_all[_check_name(key, str(path))] = value
        else:
            raise ParameterError(
                f"{key!r} is neither a parameter name nor a notebook of the series",
                source=path,
                hint=f"notebook sections are named after the files: {', '.join(sorted(stems))}",
            )
    return for_all, per_notebook


def _declared(notebook: Path) -> set[str] | None:
    """Names assigned in the notebook's ``parameters`` cell, or None when it has no such cell.

    Parsed with ``ast`` rather than papermill's line pattern, which drops a line
    whose comment contains '=' (``DATA = "sample"  # "sample" = bundled``).
    """
    from .parameters import parameters_cell

    tree = parameters_cell(notebook)
    if tree is None or isinstance(tree, str):
        return None  # no cell, or it does not parse: papermill injects anyway; the kernel reports the error
    names = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _new_run_dir(out_dir, root: Path) -> Path:
    """*out_dir*, or a new time-stamped folder under ``root/runs`` (root: the current folder)."""
    if out_dir is not None:
        path = Path(out_dir)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise ParameterError(
                f"run folder '{path}' already exists and is not empty; a run never overwrites another",
                hint="choose a new folder, or leave --out away for a time-stamped one",
            )
        path.mkdir(parents=True, exist_ok=True)
        return path.resolve()
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    (root / "runs").mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        path = root / "runs" / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            path.mkdir()  # exist_ok=False: two runs started in the same second get separate folders
            return path.resolve()
        except FileExistsError:
            continue
    raise ParameterError(f"could not create a new run folder under {root / 'runs'}")  # pragma: no cover


def _plan(notebooks, declared, for_all, per_notebook, preset, parameters) -> dict:
    """Parameters for each notebook, after checking every name is declared somewhere."""
    cli = {}
    if preset is not None:
        if "PRESET" in parameters and parameters["PRESET"] != preset:
            raise ParameterError(f"preset {preset!r} and parameter PRESET={parameters['PRESET']!r} disagree")
        cli["PRESET"] = preset
    cli.update({_check_name(k, "parameters"): v for k, v in parameters.items()})
    known = [d for d in declared.values() if d is not None]
    if known:
        everywhere = set().union(*known)
        missing = sorted((set(for_all) | set(cli)) - everywhere)
        if missing:
            raise ParameterError(
                f"no notebook of the series has parameter(s) {', '.join(missing)}",
                hint=f"declared parameters: {', '.join(sorted(everywhere))}",
            )
    plan = {}
    for nb in notebooks:
        names = declared[nb.stem]
        own = per_notebook.get(nb.stem, {})
        if names is not None and set(own) - names:
            raise ParameterError(
                f"notebook {nb.stem} has no parameter(s) {', '.join(sorted(set(own) - names))}",
                hint=f"its parameters are {', '.join(sorted(names))}",
            )
        merged = {**for_all, **own, **cli}
        chosen = {k: v for k, v in merged.items() if names is None or k in names}
        types = declared_types(nb)
        plan[nb.stem] = {k: check_value(k, v, types[k], notebook=nb.stem) if k in types else v
                         for k, v in chosen.items()}
    return plan


def _is_path_parameter(name: str) -> bool:
    return name in _PATH_PARAMETERS or (name.endswith("_DIR") and name != _RESERVED)


def _absolute_paths(values: dict) -> dict:
    """Relative paths made absolute from the current folder (the notebooks run elsewhere)."""
    from ..io.bundled import REAL_FILES

    out = dict(values)
    for name, value in values.items():
        if (_is_path_parameter(name) and isinstance(value, str) and value
                and value not in _KEYWORDS and value not in REAL_FILES and not Path(value).is_absolute()):
            out[name] = str(Path.cwd() / Path(value).expanduser()) if not value.startswith("~") \
                else str(Path(value).expanduser())
    return out


class _DropPapermillGuesses(logging.Filter):
    """Hide papermill's own parameter-inference warnings: names are checked here, with ast."""

    def filter(self, record):
        message = record.getMessage()
        return not message.startswith(("Passed unknown parameter", "Unable to parse line"))


def _export_html(exporter, notebook: Path) -> Path:
    body, _ = exporter.from_filename(str(notebook))
    target = notebook.with_suffix(".html")
    target.write_text(body, encoding="utf-8")
    return target


def _write_results(run_dir: Path) -> Path:
    from .results import read_results

    target = run_dir / "results.json"
    tmp = run_dir / ".results.json.tmp"
    tmp.write_text(json.dumps(read_results(run_dir), indent=2) + "\n", encoding="utf-8")
    tmp.replace(target)
    return target


def _check_paths(plan: dict) -> None:
    """Every DATA-like path exists (a glob matches something) before any notebook starts."""
    import glob

    from ..io.bundled import REAL_FILES

    for stem, values in plan.items():
        for name, value in values.items():
            if name in ("DATA", "REAL_IMAGE", "DARK_FRAME") and isinstance(value, str) \
                    and value not in _KEYWORDS and value not in REAL_FILES:
                if not (Path(value).exists() or glob.glob(value, recursive=True)):
                    raise MissingFileError(f"(parameter {name} of {stem}) does not exist", source=value,
                                           hint="give the path from the folder you run temnb in, or an absolute one")


def plan_series(notebooks=None, *, parameters: dict | None = None, parameters_file=None,
                preset: str | None = None, notebooks_dir=None) -> dict:
    """What :func:`run_series` would run, ``{notebook: {parameter: value}}``, checked (names, types,
    paths) but with nothing executed: ``temnb run --check``."""
    folder = find_notebooks_dir(notebooks_dir)
    available = list_notebooks(folder)
    chosen = select_notebooks(available, notebooks)
    if not chosen:
        raise MissingFileError("holds no NN_*.ipynb notebooks", source=folder)
    for_all, per_notebook = read_parameters_file(parameters_file, available) if parameters_file else ({}, {})
    declared = {nb.stem: _declared(nb) for nb in available}
    plan = _plan(chosen, declared, for_all, per_notebook, preset, dict(parameters or {}))
    plan = {stem: _absolute_paths(values) for stem, values in plan.items()}
    _check_paths(plan)
    return plan


def run_series(
    notebooks=None,
    *,
    out_dir=None,
    parameters: dict | None = None,
    parameters_file=None,
    preset: str | None = None,
    notebooks_dir=None,
    html: bool = True,
    progress: bool = True,
    kernel_name: str | None = None,
) -> Path:
    """Execute the series (or the *notebooks* selected) and return the new run folder.

    Raises :class:`NotebookFailedError` naming the notebook that failed and the
    run folder holding its executed copy (with the traceback), after writing
    ``results.json`` with what was recorded up to then.
    """
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    from tqdm.auto import tqdm

    folder = find_notebooks_dir(notebooks_dir)
    chosen = select_notebooks(list_notebooks(folder), notebooks)
    plan = plan_series(notebooks, parameters=parameters, parameters_file=parameters_file, preset=preset,
                       notebooks_dir=notebooks_dir)
    run_dir = _new_run_dir(out_dir, Path.cwd())

    exporter = None
    if html:
        from nbconvert import HTMLExporter

        exporter = HTMLExporter()
    quiet = _DropPapermillGuesses()
    loggers = [logging.getLogger("papermill"), logging.getLogger("papermill.translators")]
    for logger in loggers:
        logger.addFilter(quiet)
    bar = tqdm(chosen, desc="notebooks", unit="notebook", disable=not progress)
    skipped = {}
    try:
        for i, nb in enumerate(bar):
            bar.set_postfix_str(nb.stem)
            output = run_dir / nb.name
            try:
                papermill.execute_notebook(
                    nb, output, parameters={**plan[nb.stem], _RESERVED: str(run_dir)},
                    cwd=folder, kernel_name=kernel_name, progress_bar=False,
                )
            except NoSuchKernel as exc:
                raise NotebookFailedError(
                    f"notebook {nb.name} could not start: no Jupyter kernel named {exc.args[0]!r}",
                    notebook=nb, run_dir=run_dir,
                    hint="install the kernel with `python3 -m ipykernel install --user`",
                ) from None
            except papermill.PapermillExecutionError as exc:
                if exc.ename != _TOO_SHORT:
                    _fail(exc, nb, output, exporter, run_dir, chosen[i + 1:])
                # The movie is too short for this notebook (its first cell says so): the others still run.
                skipped[nb.stem] = f"{exc.ename}: {str(exc.evalue).splitlines()[0]}"
                _write_skipped(run_dir, skipped)
                if exporter is not None and output.exists():
                    _export_html(exporter, output)
                _write_results(run_dir)
                continue
            except Exception as exc:
                _fail(exc, nb, output, exporter, run_dir, chosen[i + 1:])
            if exporter is not None:
                _export_html(exporter, output)
            _write_results(run_dir)
    finally:
        bar.close()
        for logger in loggers:
            logger.removeFilter(quiet)
    return run_dir


def _write_skipped(run_dir: Path, skipped: dict) -> None:
    (run_dir / "skipped.json").write_text(json.dumps(skipped, indent=2) + "\n", encoding="utf-8")


def _fail(exc, nb, output, exporter, run_dir, not_run_list):
    """Stop the series at a notebook that failed, naming it and where its executed copy is."""
    import papermill

    what = (f"in cell [{exc.exec_count}]: {exc.ename}: {exc.evalue}"
            if isinstance(exc, papermill.PapermillExecutionError)
            else f": {type(exc).__name__}: {exc}")
    saved = output if output.exists() else None
    if saved is not None and exporter is not None:
        _export_html(exporter, saved)
    _write_results(run_dir)
    not_run = ", ".join(p.stem for p in not_run_list) or "none"
    where = (f"The executed notebook, with the error, is saved as {saved}"
             if saved else f"The run folder is {run_dir}")
    raise NotebookFailedError(
        f"notebook {nb.name} failed {what}\n  {where}\n"
        f"  Run folder: {run_dir}\n  Not run: {not_run}",
        notebook=nb, run_dir=run_dir,
        hint="open the saved notebook to see the traceback, fix the cause and run again",
    ) from exc
