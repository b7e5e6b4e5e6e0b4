"""Device choice on this CPU-only machine, and without torch at all."""
from __future__ import annotations

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
