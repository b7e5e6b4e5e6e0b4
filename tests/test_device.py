"""Device choice on this CPU-only machine, and without torch at all."""
from __future__ import annotations

import os
import sys

import pytest

import temnb
from temnb.core.device import choose_device, device_report, format_device_report
from temnb.core.errors import ParameterError

torch = pytest.importorskip("torch")
needs_cpu_only = pytest.mark.skipif(
    torch.cuda.is_available() or torch.backends.mps.is_available(), reason="this machine has a GPU"
)


@needs_cpu_only
def test_auto_picks_cpu_without_gpu():
    device = choose_device("auto")
    assert isinstance(device, torch.device) and device.type == "cpu"
    assert temnb.choose_device is choose_device


@needs_cpu_only
@pytest.mark.parametrize("wanted", ["cuda", "CUDA:0", "mps"])
def test_unavailable_gpu_request_is_an_error(wanted):
    with pytest.raises(ParameterError, match="not available"):
        choose_device(wanted)


def test_unknown_device_name_lists_choices():
    with pytest.raises(ParameterError, match="'auto', 'cpu'"):
        choose_device("gpu")


@needs_cpu_only
def test_device_report_keys():
    report = device_report()
    assert report["device"] == "cpu"
    assert report["torch_version"] == torch.__version__
    assert report["torch_threads"] == torch.get_num_threads()
    assert report["cuda_available"] is False and report["mps_available"] is False
    assert {"gpu_name", "gpu_memory_gb", "cuda_version"} <= set(report)
    assert torch.__version__ in format_device_report(report)


def test_without_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    assert choose_device("auto") == "cpu"
    report = device_report()
    assert report["torch_version"] is None and report["device"] == "cpu"
    assert "not installed" in report["note"]
    with pytest.raises(ParameterError, match="PyTorch is not installed"):
        choose_device("cuda")


def test_usable_cores_and_choose_threads(monkeypatch):
    from temnb.core import device

    cores = device.usable_cores()
    assert 1 <= cores <= (os.cpu_count() or 1)
    monkeypatch.delenv("TEMNB_THREADS", raising=False)
    assert device.choose_threads() == cores == device.choose_threads("auto")
    assert device.choose_threads(1) == 1
    assert device.choose_threads(10_000) == cores  # never more threads than cores
    monkeypatch.setenv("TEMNB_THREADS", "1")
    assert device.choose_threads() == 1
    monkeypatch.setenv("TEMNB_THREADS", "lots")
    with pytest.raises(ParameterError, match="TEMNB_THREADS"):
        device.choose_threads()
    for bad in (0, -1, "two", True, 1.5):
        with pytest.raises(ParameterError, match="whole number"):
            device.choose_threads(bad)


def test_cgroup_quota_caps_the_cores(tmp_path, monkeypatch):
    from temnb.core import device

    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert device._cgroup_cpu_limit(str(tmp_path)) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert device._cgroup_cpu_limit(str(tmp_path)) is None
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert device._cgroup_cpu_limit(str(tmp_path)) == 1.0
    monkeypatch.setattr(device, "_cgroup_cpu_limit", lambda root="/sys/fs/cgroup": 1.0)
    assert device.usable_cores() == 1  # a Binder pod of 1 CPU on a many-core host


def test_torch_threads_sets_and_restores():
    from temnb.core.device import torch_threads

    before = torch.get_num_threads()
    with torch_threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
