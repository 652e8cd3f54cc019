"""What running a model costs: peak memory while it embeds, and the figures stored per model and dataset.

On CUDA the peak is PyTorch's own high-water mark of allocated device memory
(``torch.cuda.max_memory_allocated``, reset per model and dataset). On the CPU it is the peak resident
memory of the pathboard process, sampled every 20 ms from ``/proc/self/status`` while the model embeds
(DataLoader workers are separate processes and are not counted); where /proc is missing, the process's
lifetime high-water mark (``getrusage``), which can only over-state a later model's peak.
"""
from __future__ import annotations

import sys
import threading


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _lifetime_peak() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


class PeakMemory:
    """``with PeakMemory(device) as peak: ...``; then ``peak.bytes`` and ``peak.kind`` say what was measured."""

    def __init__(self, device: str, interval: float = 0.02):
        self.device, self.interval = device, interval
        self.bytes: int | None = None
        self.kind = ""
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self) -> PeakMemory:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)
            self.kind = "cuda max allocated"
        elif _rss_bytes() is not None:
            self.kind = "process peak RSS (sampled)"
            self.bytes = _rss_bytes()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        else:
            self.kind = "process lifetime peak RSS"
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            now = _rss_bytes()
            if now is not None and now > (self.bytes or 0):
                self.bytes = now

    def __exit__(self, *exc) -> None:
        if self.device.startswith("cuda"):
            import torch

            self.bytes = int(torch.cuda.max_memory_allocated(self.device))
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            now = _rss_bytes()
            self.bytes = max(self.bytes or 0, now or 0)
        else:
            self.bytes = _lifetime_peak()
