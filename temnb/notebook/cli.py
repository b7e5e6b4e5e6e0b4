"""The ``temnb`` command: run the notebook series, describe files, report the machine.

::

    temnb run [NOTEBOOK ...] [--preset P] [-p NAME VALUE]... [-f params.yaml] [--out DIR] [--no-html]
    temnb info FILE...
    temnb device [--device auto|cpu|cuda|mps]
    temnb --version

Exit codes: 0 success, 1 a notebook or a file failed, 2 bad arguments or parameters.
"""
from __future__ import annotations

import argparse
import json
import sys

from ..core.errors import ParameterError, TemnbError

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    from ..core.environment import TEMNB_VERSION as __version__

    parser = argparse.ArgumentParser(
        prog="temnb", description="Denoising in situ TEM movies: run the notebook series and inspect data."
    )
    parser.add_argument("--version", action="version", version=f"temnb {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run", help="execute the notebook series into a new run folder",
        description="Execute notebooks/NN_*.ipynb with papermill into a new folder runs/<date-time>/ "
        "(executed notebooks, HTML copies, results.json).",
    )
    run.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                     help="numbers (00 02) or names of the notebooks to run; default: all, in order")
    run.add_argument("--preset", choices=("smoke", "workshop", "full"), help="PRESET for every notebook")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="set a parameter; VALUE is read as YAML (8 is a number, true a bool)")
    run.add_argument("-f", "--parameters-file", metavar="YAML",
                     help="YAML file: NAME: value for all notebooks, NN_name: {NAME: value} for one")
    run.add_argument("--out", metavar="DIR", help="run folder to create (default runs/<YYYYmmdd-HHMMSS>)")
    run.add_argument("--notebooks-dir", metavar="DIR", help="folder of the series (default ./notebooks)")
    run.add_argument("--no-html", action="store_true", help="do not write HTML copies")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--kernel", metavar="NAME", help="Jupyter kernel (default: the notebooks' own)")
    run.add_argument("--check", action="store_true",
                     help="check notebooks, parameter names, types and paths, print the plan, run nothing")

    info = commands.add_parser("info", help="describe data files (shape, calibration, counts)")
    info.add_argument("files", nargs="+", metavar="FILE")

    device = commands.add_parser("device", help="show the compute device and the software environment")
    device.add_argument("--device", default="auto", help="device preference to check (default auto)")
    return parser


def _print_results(results: dict) -> None:
    from .results import format_records

    for name, payload in results.items():
        status = "" if payload.get("finished") else "  (did not finish)"
        print(f"\n{name}  [{payload.get('wall_time_s', 0):.1f} s]{status}")
        if payload.get("records"):
            print("  " + format_records(payload["records"]).replace("\n", "\n  "))
        else:
            print("  (nothing recorded)")


def _cmd_run(args) -> int:
    from .results import read_results
    from .run import NotebookFailedError, parse_parameter_value, run_series

    parameters = {}
    for name, value in args.parameter:
        if name in parameters:
            raise ParameterError(f"parameter {name} is given twice with -p")
        parameters[name] = parse_parameter_value(value)
    if args.check:
        from .run import plan_series

        plan = plan_series(args.notebooks or None, parameters=parameters, parameters_file=args.parameters_file,
                           preset=args.preset, notebooks_dir=args.notebooks_dir)
        for stem, values in plan.items():
            shown = ", ".join(f"{k}={v!r}" for k, v in values.items()) or "(defaults)"
            print(f"{stem}: {shown}")
        print(f"OK: {len(plan)} notebook(s) would run; nothing was run (--check)")
        return 0
    try:
        run_dir = run_series(
            args.notebooks or None, out_dir=args.out, parameters=parameters,
            parameters_file=args.parameters_file, preset=args.preset, notebooks_dir=args.notebooks_dir,
            html=not args.no_html, progress=not args.no_progress, kernel_name=args.kernel,
        )
    except NotebookFailedError as exc:
        _print_results(read_results(exc.run_dir))
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return 1
    results = read_results(run_dir)
    skipped = json.loads((run_dir / "skipped.json").read_text()) if (run_dir / "skipped.json").is_file() else {}
    _print_results({k: v for k, v in results.items() if k not in skipped})
    for name, reason in skipped.items():
        print(f"\n{name}  SKIPPED: {reason}")
    print(f"\nResults of {len(results) - len(skipped)} notebook(s) are in {run_dir}"
          + (f"; {len(skipped)} skipped (the movie is too short for them)" if skipped else ""))
    print(f"  merged numbers: {run_dir / 'results.json'}")
    return 0


def _format_info(row: dict) -> str:
    skip = {"notes", "warnings", "error", "error_message", "file", "path"}
    units = {"pixel_size": row.get("pixel_unit") or "(no unit)", "pixel_size_y": row.get("pixel_unit") or "(no unit)",
             "frame_time": "s", "dose_per_pixel": "e-/px per frame", "dose_per_area": "e-/Å² per frame",
             "dose_rate": "e-/Å²/s", "beam_energy_kV": "kV"}

    def shown(key, value):
        if value is None:
            return "unknown"
        if isinstance(value, float):
            value = f"{value:.4g}"
        return f"{value} {units[key]}" if key in units else str(value)

    # Both pixel sides, named: a non-square pixel (a TIFF's y tag 10x its x) must be visible here.
    labels = {"pixel_size": "pixel size x", "pixel_size_y": "pixel size y"}
    rows = [(labels.get(key, key), shown(key, value)) for key, value in row.items() if key not in skip]
    x, y = row.get("pixel_size"), row.get("pixel_size_y")
    if x and y and abs(abs(y / x) - 1) > 1e-3:
        rows.append(("pixel shape", f"NOT square: y/x = {abs(y / x):.4g}"))
    rows += [("note", note) for note in row["notes"]]
    width = max(len(key) for key, _ in rows)
    return "\n".join([row["path"]] + [f"  {key:<{width}}  {value}" for key, value in rows])


def _cmd_info(args) -> int:
    # Imported here: the CLI must work for `run` and `device` whatever state io is in.
    from ..io.survey import describe

    status = 0
    for path in args.files:
        # Lazy: describing a file must not read all of it. Warnings are kept in the row's notes.
        row = describe(path, lazy=True)
        if row["error"]:
            print(row["error_message"], file=sys.stderr)
            status = 1
        else:
            print(_format_info(row))
    return status


def _cmd_device(args) -> int:
    from ..core.device import device_report, format_device_report
    from ..core.environment import format_environment_report

    print(format_device_report(device_report(args.device)))
    print()
    print(format_environment_report())
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    handler = {"run": _cmd_run, "info": _cmd_info, "device": _cmd_device}[args.command]
    try:
        return handler(args)
    except ParameterError as exc:
        print(f"temnb {args.command}: {exc}", file=sys.stderr)
        return 2
    except TemnbError as exc:
        print(f"temnb {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
