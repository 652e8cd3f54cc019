"""The model interface's runtime: torch threads sized to the process's cores, half precision on CPU."""
from __future__ import annotations

import pytest
import torch

from pathboard.core.errors import PathboardError
from pathboard.core.interfaces.model import Runtime, size_threads


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
