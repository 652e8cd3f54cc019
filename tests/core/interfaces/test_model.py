"""The model interface's runtime: torch threads sized to the process's cores, half precision on CPU."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from pathboard.core.errors import PathboardError
from pathboard.core.interfaces.model import Runtime, no_gpu_driver, size_threads


def test_half_precision_on_cpu_falls_back_with_a_note(capsys):
    rt = Runtime.create("cpu", "bf16")
    assert rt.precision == "fp32" and "bf16 is not used on CPU" in capsys.readouterr().err
    with pytest.raises(PathboardError, match="unknown device"):
        Runtime.create("tpu")


def test_torch_threads_are_the_cores_this_process_may_use(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)  # a narrowed cgroup
        assert size_threads(None) == 3 == torch.get_num_threads()
        assert size_threads(2) == 2 == torch.get_num_threads()  # --threads wins
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(not no_gpu_driver(), reason="this machine has a GPU driver: torch must be asked")
def test_a_cpu_run_that_embeds_nothing_never_imports_torch(tmp_path):
    """Choosing the device, sizing the threads and making an embedder import no torch (~1.2 s): a run that
    finds its embeddings cached is scored without it; torch, once loaded, gets the threads sized before."""
    code = ("import os, sys; from pathboard.core.interfaces.model import Runtime, size_threads; "
            "from pathboard.core.embedding.embedder import Embedder; "
            "r = Runtime.create(None); n = size_threads(None); print(r.device, 'torch' in sys.modules, "
            "os.environ['OMP_NUM_THREADS'] == str(n)); import torch; print(torch.get_num_threads() == n)")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["cpu", "False", "True", "True"], out.stdout + out.stderr


def test_a_gpu_on_the_pci_bus_means_asking_torch_even_without_driver_files(tmp_path, monkeypatch):
    import glob as globbing

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr("pathboard.core.interfaces.model.GPU_DRIVER_FILES", (str(tmp_path / "no-such-file"),))
    device = tmp_path / "0000:01:00.0"
    device.mkdir()
    monkeypatch.setattr(globbing, "glob", lambda pattern: [str(device)])
    for vendor, kind, none in (("0x10de", "0x030200", False), ("0x1002", "0x030000", False),
                               ("0x8086", "0x030000", True), ("0x10de", "0x040300", True)):
        (device / "vendor").write_text(vendor + "\n")
        (device / "class").write_text(kind + "\n")
        assert no_gpu_driver() is none, (vendor, kind)


def test_module_distributions_are_what_importlib_metadata_says():
    """The libraries in a model's cache key come from the distributions that provide its modules, found without
    parsing every installed distribution's metadata: the same as ``packages_distributions()``, for every module."""
    import importlib.metadata

    from pathboard.core.interfaces.model import module_distributions

    everything = importlib.metadata.packages_distributions()
    for module in [*everything, "torch", "open_clip", "no_such_module"]:
        assert sorted(module_distributions.__wrapped__(module)) == sorted(everything.get(module, [])), module
