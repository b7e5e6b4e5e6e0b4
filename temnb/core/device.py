"""Which device the deep-learning notebooks run on, and what it is.

``choose_device("auto")`` picks CUDA, then Apple's MPS, then the CPU, so the
same notebook runs on a workstation GPU, a MacBook and a workshop laptop.  An
explicit request that cannot be met is an error rather than a silent fall-back
to the CPU: a student who asked for the GPU should not wait an hour believing
they have one.

How many CPU threads: :func:`usable_cores` counts the cores this process may use (its CPU
affinity and a container's CPU quota, not the host's core count), :func:`choose_threads` turns a
preference (``"auto"``, a number, or the ``TEMNB_THREADS`` environment variable) into a thread
count, and :func:`torch_threads` sets torch to it for a block and restores it afterwards.  temnb's
training and :func:`temnb.denoise` go through them, so torch never runs more threads than there
are cores (in a container torch otherwise counts the host's, and on a busy 2-core machine two
spinning threads ran a WCVD 16x slower than one).

torch is optional: without it the device is the string ``'cpu'`` and the report
says why.
"""
from __future__ import annotations

import contextlib
import math
import os
import re

from .errors import ParameterError

__all__ = ["choose_device", "choose_threads", "device_report", "format_device_report", "torch_threads",
           "usable_cores"]

_VALID = "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
_NO_TORCH = "PyTorch is not installed, so everything runs on the CPU with numpy"


def _import_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _mps_available(torch) -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def _normalise(preference) -> str:
    if preference is None:
        return "auto"
    text = str(preference).strip().lower()  # also accepts a torch.device
    if text in ("auto", "cpu", "cuda", "mps") or re.fullmatch(r"cuda:\d+", text):
        return text
    raise ParameterError(
        f"unknown device {preference!r}; valid choices are {_VALID}",
        hint="use DEVICE = 'auto' to take the best device this machine has",
    )


def choose_device(preference="auto"):
    """The torch.device to compute on.

    *preference* is ``'auto'`` (CUDA, then MPS, then CPU), ``'cpu'``, ``'cuda'``,
    ``'cuda:N'`` or ``'mps'``.  Asking for a device this machine lacks raises
    :class:`~temnb.core.errors.ParameterError`.  Without torch installed the result
    is the string ``'cpu'``.
    """
    choice = _normalise(preference)
    torch = _import_torch()
    if torch is None:
        if choice in ("auto", "cpu"):
            return "cpu"
        raise ParameterError(
            f"device {choice!r} was requested but {_NO_TORCH}",
            hint="install PyTorch (https://pytorch.org/get-started/) or use DEVICE = 'cpu'",
        )
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available(torch):
            return torch.device("mps")
        return torch.device("cpu")
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            build = torch.version.cuda
            why = (
                "this PyTorch build has no CUDA support (a CPU-only build)"
                if build is None
                else f"PyTorch was built for CUDA {build} but finds no usable NVIDIA GPU or driver"
            )
            raise ParameterError(
                f"device {choice!r} was requested but CUDA is not available: {why}",
                hint="use DEVICE = 'auto' to fall back to the best available device, or 'cpu'",
            )
        index = int(choice.split(":")[1]) if ":" in choice else 0
        count = torch.cuda.device_count()
        if index >= count:
            raise ParameterError(
                f"device {choice!r} was requested but this machine has {count} CUDA device(s), "
                f"numbered 0 to {count - 1}",
            )
        return torch.device(choice)
    if choice == "mps" and not _mps_available(torch):
        raise ParameterError(
            "device 'mps' was requested but Apple's Metal backend (MPS) is not available here",
            hint="MPS needs an Apple-silicon Mac and a recent PyTorch; use DEVICE = 'auto' or 'cpu'",
        )
    return torch.device(choice)


def _cgroup_cpu_limit(root: str = "/sys/fs/cgroup") -> float | None:
    """CPUs allowed by a cgroup quota (cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``), or None."""
    try:
        quota, period = open(os.path.join(root, "cpu.max")).read().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(open(os.path.join(root, "cpu", "cpu.cfs_quota_us")).read())
        period = int(open(os.path.join(root, "cpu", "cpu.cfs_period_us")).read())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


def usable_cores() -> int:
    """The CPU cores this process may run on: its affinity mask, capped by a container's CPU quota
    (a Binder pod of 1 CPU on a 64-core host is 1), at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        cores = os.cpu_count() or 1
    limit = _cgroup_cpu_limit()
    if limit is not None:
        cores = min(cores, max(1, math.floor(limit)))
    return max(1, cores)


def choose_threads(preference="auto") -> int:
    """CPU threads to compute with: *preference* is ``"auto"`` (``TEMNB_THREADS`` if set, else
    :func:`usable_cores`) or a whole number >= 1, which is capped at the usable cores (more threads
    than cores only wait on each other)."""
    if preference is None or (isinstance(preference, str) and preference.strip().lower() == "auto"):
        env = os.environ.get("TEMNB_THREADS", "").strip()
        if not env:
            return usable_cores()
        preference, where = env, "the environment variable TEMNB_THREADS"
    else:
        where = "threads"
    text = str(preference).strip()
    n = int(text) if not isinstance(preference, bool) and text.isdigit() else 0
    if n < 1:
        raise ParameterError(f"{where} = {preference!r}; it must be 'auto' or a whole number >= 1",
                             hint="e.g. threads=1 on a machine other jobs share, or 'auto' for every core")
    return min(n, usable_cores())


@contextlib.contextmanager
def torch_threads(preference="auto"):
    """Run a block with torch's intra-op thread count set by :func:`choose_threads`, then restore
    the previous count (torch's setting is process-wide).  Yields the count; without torch it
    yields the count and does nothing else."""
    n = choose_threads(preference)
    torch = _import_torch()
    if torch is None:
        yield n
        return
    before = torch.get_num_threads()
    if before != n:
        torch.set_num_threads(n)
    try:
        yield n
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def device_report(preference="auto") -> dict:
    """What the computation will run on, as a JSON-serialisable dict.

    Keys: ``torch_version`` (None without torch), ``device`` (the chosen device
    as text), ``preference``, ``cuda_available``, ``cuda_version``,
    ``gpu_name``, ``gpu_memory_gb``, ``gpu_count``, ``mps_available``,
    ``torch_threads`` (CPU threads torch uses now), ``usable_cores``, ``temnb_threads`` (what
    temnb computes with: :func:`choose_threads`) and ``note``.
    """
    device = choose_device(preference)
    torch = _import_torch()
    report = {
        "torch_version": None,
        "device": str(device),
        "preference": _normalise(preference),
        "cuda_available": False,
        "cuda_version": None,
        "gpu_count": 0,
        "gpu_name": None,
        "gpu_memory_gb": None,
        "mps_available": False,
        "torch_threads": None,
        "usable_cores": usable_cores(),
        "temnb_threads": choose_threads(),
        "note": None,
    }
    if torch is None:
        report["note"] = _NO_TORCH
        return report
    report.update(
        torch_version=torch.__version__,
        cuda_available=bool(torch.cuda.is_available()),
        cuda_version=torch.version.cuda,
        mps_available=_mps_available(torch),
        torch_threads=torch.get_num_threads(),
    )
    if report["cuda_available"]:
        index = device.index if getattr(device, "type", None) == "cuda" and device.index else 0
        props = torch.cuda.get_device_properties(index)
        report.update(
            gpu_count=torch.cuda.device_count(),
            gpu_name=props.name,
            gpu_memory_gb=round(props.total_memory / 1024**3, 2),
        )
    elif report["mps_available"]:
        report["gpu_name"] = "Apple GPU (MPS)"
    if str(device) == "cpu":
        report["note"] = "no GPU in use: deep-learning steps will be slow; the smoke preset keeps them short"
    return report


def format_device_report(report: dict | None = None) -> str:
    """The device report as text, for notebooks and ``temnb device``."""
    report = device_report() if report is None else report
    lines = ["Device", f"  Computing on   {report['device']}"]
    if report.get("torch_version") is None:
        lines.append("  PyTorch        not installed")
    else:
        lines.append(f"  PyTorch        {report['torch_version']}")
        lines.append(f"  CUDA           {report.get('cuda_version') or 'not in this build'}"
                     f"{'' if report.get('cuda_available') else ' (no usable GPU)'}")
        lines.append(f"  Apple MPS      {'available' if report.get('mps_available') else 'not available'}")
    if report.get("usable_cores") is not None:
        lines.append(f"  CPU threads    temnb uses {report.get('temnb_threads')} of {report['usable_cores']} usable "
                     "core(s) (TEMNB_THREADS or threads= to change)")
    if report.get("gpu_name"):
        memory = report.get("gpu_memory_gb")
        lines.append(f"  GPU            {report['gpu_name']}"
                     f"{'' if memory is None else f', {memory:.1f} GiB'}")
    if report.get("note"):
        lines.append(f"  Note           {report['note']}")
    return "\n".join(lines)
