"""The numbers a notebook reports.

Every notebook of the series expands its ``PRESET`` with :func:`temnb.notebook.presets.choose_preset`
and reports its key numbers through a :class:`NotebookRun`, which keeps them in
``<OUT_DIR>/<name>.json``.  Tests and ``temnb run`` read that file (never the
notebook's printed output), so what a notebook claims is checkable.

The JSON is rewritten after every :meth:`NotebookRun.record`, so a notebook that
crashes half-way still leaves what it had measured, with ``finished: null``.
"""
from __future__ import annotations

import copy
import datetime as _dt
import json
import numbers
import random
import sys
import time
from pathlib import Path

from ..core.errors import CorruptFileError, MissingFileError, ParameterError
from ..core.record import jsonable, peak_memory_mb, read_json, write_json_atomically
from .presets import forced_preset


def _param_value(value, what: str):
    # Unlike a record, a parameter may legitimately be None (DATA=None: use the sample)
    # or a mapping (a region of interest).
    if value is None:
        return None
    if isinstance(value, dict):
        return {str(k): _param_value(v, f"{what}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_param_value(v, f"{what}[{i}]") for i, v in enumerate(value)]
    return jsonable(value, what)


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _in_notebook() -> bool:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def _show_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        text = json.dumps(value)
        return text if len(text) <= 40 else f"list of {len(value)}"
    return str(value)


def format_records(records: dict) -> str:
    """The records as an aligned text table (key, value, unit, note)."""
    rows = [("key", "value", "unit", "note")]
    rows += [(k, _show_value(r["value"]), r.get("unit") or "", r.get("note") or "") for k, r in records.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c:<{widths[2]}}  {d}".rstrip() for a, b, c, d in rows
    )


def _records_html(records: dict) -> str:
    from html import escape

    body = "".join(
        f"<tr><td>{escape(k)}</td><td>{escape(_show_value(r['value']))}</td>"
        f"<td>{escape(r.get('unit') or '')}</td><td>{escape(r.get('note') or '')}</td></tr>"
        for k, r in records.items()
    )
    return f"<table><tr><th>key</th><th>value</th><th>unit</th><th>note</th></tr>{body}</table>"


class RunSummary(dict):
    """What :meth:`NotebookRun.finish` wrote, with a one-line repr so the cell's output stays short."""

    def __repr__(self):
        return (
            f"<{self['notebook']}: {len(self['records'])} records, {self['wall_time_s']:.1f} s, "
            f"saved to {self.get('path')}>"
        )


class NotebookRun:
    """Seeds the random generators and records a notebook's key numbers to JSON.

    ``run = NotebookRun("02_poisson_statistics", out_dir=OUT_DIR, seed=SEED,
    params=dict(DATA=DATA, PRESET=PRESET))`` seeds Python's ``random``, numpy
    (``run.rng`` is a seeded :class:`numpy.random.Generator`; the legacy global
    generator is seeded too) and torch when it is installed, then writes
    ``<out_dir>/<name>.json``.
    """

    def __init__(self, name: str, out_dir, seed: int = 0, params: dict | None = None):
        if not isinstance(name, str) or not name or "/" in name or "\\" in name:
            raise ParameterError(f"notebook name must be a plain file stem, got {name!r}")
        if out_dir is None:
            raise ParameterError("out_dir is None", hint="set OUT_DIR in the parameters cell, e.g. '../runs/mine'")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ParameterError(f"seed must be a non-negative integer, got {seed!r}")
        self.name = name
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.out_dir / f"{name}.json"
        self.seed = int(seed)
        self.params = {str(k): _param_value(v, f"parameter {k!r}") for k, v in (params or {}).items()}
        forced = forced_preset()
        if forced is not None and "PRESET" in self.params and self.params["PRESET"] != forced:
            self.params["PRESET_written"], self.params["PRESET"] = self.params["PRESET"], forced
        self.rng = self._seed_everything(self.seed)
        self.records: dict = {}
        self._t0 = time.perf_counter()
        self._started = _now()
        self._finished = None
        from ..core.environment import environment_report

        self.environment = environment_report()
        self._write()

    @staticmethod
    def _seed_everything(seed: int):
        import numpy as np

        random.seed(seed)
        np.random.seed(seed)  # libraries that still use the global generator
        try:
            import torch
        except ImportError:
            torch = None
        if torch is not None:
            torch.manual_seed(seed)
        return np.random.default_rng(seed)

    def record(self, key: str, value, unit: str | None = None, note: str | None = None):
        """Keep *value* under *key* (recording a key again replaces it) and return *value* unchanged.

        Values are numbers, text, bools or (nested) lists of them; numpy and torch
        scalars/arrays are converted.  NaN, infinity and None are refused.
        """
        if not isinstance(key, str) or not key:
            raise ParameterError(f"record key must be a non-empty string, got {key!r}")
        for label, text in (("unit", unit), ("note", note)):
            if text is not None and not isinstance(text, str):
                raise ParameterError(f"{label} of record {key!r} must be text, got {type(text).__name__}")
        self.records[key] = {"value": jsonable(value, f"record {key!r}"), "unit": unit, "note": note}
        self._write()
        return value

    def as_dict(self) -> dict:
        """The JSON payload as it stands now."""
        return {
            "notebook": self.name,
            "params": self.params,
            "seed": self.seed,
            "records": copy.deepcopy(self.records),
            "started": self._started,
            "finished": self._finished,
            "wall_time_s": round(time.perf_counter() - self._t0, 3),
            "peak_memory_mb": peak_memory_mb(),
            "environment": self.environment,
        }

    def _write(self) -> dict:
        payload = self.as_dict()
        write_json_atomically(self.path, payload)
        return payload

    def finish(self) -> RunSummary:
        """Write the final timing, peak memory and environment; show the records table.

        Returns the written payload (a dict, with ``path`` added).
        """
        from ..core.environment import environment_report, format_environment_report

        self._finished = _now()
        self.environment = environment_report()  # packages may have been installed mid-notebook
        summary = RunSummary(self._write(), path=str(self.path))
        header = (f"{self.name}: {len(self.records)} recorded numbers, "
                  f"{summary['wall_time_s']:.1f} s, peak memory {summary['peak_memory_mb']} MB")
        env_text = format_environment_report(self.environment)
        if _in_notebook():
            from IPython.display import HTML, display

            display(HTML(f"<p><b>{header}</b> (saved to <code>{self.path}</code>)</p>"
                         f"{_records_html(self.records)}<pre>{env_text}</pre>"))
        else:
            print(f"{header}\nsaved to {self.path}\n{format_records(self.records)}\n\n{env_text}")
        return summary

    def __repr__(self):
        return f"NotebookRun({self.name!r}, out_dir={str(self.out_dir)!r}, seed={self.seed}, records={len(self.records)})"


def _is_payload(data) -> bool:
    return isinstance(data, dict) and "notebook" in data and "records" in data


def read_results(path_or_dir) -> dict:
    """Recorded results as ``{notebook_name: payload}``.

    *path_or_dir* is one notebook's JSON, a merged ``results.json`` or a run
    folder; a folder's per-notebook JSON files are merged (other JSON files
    there are ignored), or its ``results.json`` is read when it holds none.
    """
    path = Path(path_or_dir)
    if not path.exists():
        raise MissingFileError("does not exist", source=path, hint="pass a run folder or a notebook's JSON file")
    if path.is_file():
        data = read_json(path)
        if _is_payload(data):
            return {data["notebook"]: data}
        if isinstance(data, dict) and all(_is_payload(v) for v in data.values()):
            return data
        raise CorruptFileError("is JSON but not a temnb results file (no 'notebook' and 'records')", source=path)
    merged = {}
    for file in sorted(path.glob("*.json")):
        if file.name == "results.json":
            continue
        data = read_json(file)
        if _is_payload(data):
            merged[data["notebook"]] = data
    if not merged and (path / "results.json").is_file():
        return read_results(path / "results.json")
    return merged
