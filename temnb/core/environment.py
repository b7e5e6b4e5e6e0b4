"""What a result was computed with: Python, machine and package versions.

A recorded number is only comparable with another one when we know what
produced it, so every notebook's JSON carries this report.  Versions are read
from the installed distributions' metadata: importing hyperspy, abTEM or torch
just to ask for ``__version__`` would cost seconds per notebook.
"""
from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

__all__ = ["TEMNB_VERSION", "PACKAGES", "environment_report", "format_environment_report", "package_version"]

#: temnb's own version (``temnb.__version__``; pyproject.toml reads it from here).
TEMNB_VERSION = "0.1.0"

# Distribution names as the package index spells them (the metadata lookup
# normalises case and '-'/'_').
PACKAGES = (
    "temnb",
    "numpy",
    "scipy",
    "hyperspy",
    "rosettasciio",
    "dask",
    "scikit-image",
    "abtem",
    "ase",
    "torch",
    "papermill",
    "ipywidgets",
    "matplotlib",
)


def package_version(name: str) -> str | None:
    """Installed version of distribution *name*, or None when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _total_ram_gb() -> float | None:
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        return round(psutil.virtual_memory().total / 1024**3, 2)
    try:  # POSIX without psutil
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 2)
    except (AttributeError, ValueError, OSError):
        return None


def _usable_cpus() -> int | None:
    # Containers and batch schedulers often allow fewer cores than the machine has.
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def environment_report() -> dict:
    """Python, platform, CPUs, RAM and the versions of the packages temnb relies on.

    Returns a JSON-serialisable dict::

        {"python": "3.11.7", "python_executable": ..., "platform": ..., "machine": ...,
         "cpu_count": 8, "usable_cpus": 2, "total_ram_gb": 15.5,
         "packages": {"numpy": "2.1.0", "torch": None, ...}}

    A package that is not installed has version None.
    """
    return {
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": _usable_cpus(),
        "total_ram_gb": _total_ram_gb(),
        "packages": {name: package_version(name) for name in PACKAGES},
    }


def format_environment_report(report: dict | None = None) -> str:
    """The environment report as aligned text, for notebooks and the command line."""
    report = environment_report() if report is None else report
    ram = report.get("total_ram_gb")
    lines = [
        "Environment",
        f"  Python     {report.get('python')} ({report.get('python_executable')})",
        f"  Platform   {report.get('platform')}",
        f"  CPUs       {report.get('usable_cpus')} usable of {report.get('cpu_count')}",
        f"  RAM        {'unknown' if ram is None else f'{ram:.1f} GiB'}",
        "  Packages",
    ]
    packages = report.get("packages", {})
    width = max((len(name) for name in packages), default=0)
    for name, version in packages.items():
        lines.append(f"    {name:<{width}}  {version or 'not installed'}")
    return "\n".join(lines)
