"""The model interface every plugin implements, and what a run needs to load one."""
from __future__ import annotations

import contextlib
import functools
import json
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pathboard.core.errors import PathboardError
from pathboard.core.interfaces.weights import Weights

if TYPE_CHECKING:
    import torch

#: precision name -> the name of its torch dtype (torch is imported only when a model runs)
PRECISIONS = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


@dataclass(frozen=True)
class Runtime:
    """Where and how a model runs. Recorded with every result."""

    device: str = "cpu"
    precision: str = "fp32"
    #: image batches go to the device in channels-last layout (NHWC), the layout cuDNN's convolutions run
    #: fastest in; on by default on CUDA, where it is free for ViTs and faster for convolutional towers
    channels_last: bool = False

    @classmethod
    def create(cls, device: str | None, precision: str = "fp32") -> Runtime:
        """The runtime of ``device`` (None: CUDA where it is available, else the CPU). torch is imported only
        to ask about an accelerator: a run on the CPU that finds its embeddings cached never loads it."""
        if precision not in PRECISIONS:
            raise PathboardError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        if device is None:
            device = "cpu" if no_gpu_driver() else "cuda" if _torch().cuda.is_available() else "cpu"
        kind = device.split(":")[0]
        if kind not in {"cpu", "cuda", "mps"}:
            raise PathboardError(f"unknown device {device!r}; use cpu, cuda[:N] or mps")
        if kind == "cuda" and not _torch().cuda.is_available():
            raise PathboardError(f"--device {device}: CUDA is not available on this machine")
        if kind == "mps" and not _torch().backends.mps.is_available():
            raise PathboardError(f"--device {device}: MPS is not available on this machine")
        if kind == "cpu" and precision != "fp32":
            print(f"note: {precision} is not used on CPU; running in fp32", file=sys.stderr)
            precision = "fp32"
        return cls(device, precision, channels_last=kind == "cuda")

    def autocast(self):
        """Mixed precision on accelerators; a no-op in fp32."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        import torch

        return torch.autocast(self.device.split(":")[0], dtype=getattr(torch, PRECISIONS[self.precision]))


#: device files of a GPU driver (NVIDIA's, AMD ROCm's, WSL 2's GPU paravirtualisation): without any of them, a
#: Linux machine has no CUDA device for torch to find
GPU_DRIVER_FILES = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia/version", "/dev/kfd", "/dev/dxg")


def no_gpu_driver() -> bool:
    """True on a Linux machine without a GPU driver and without an NVIDIA or AMD display device on its PCI bus
    (a driver that makes its device files only when CUDA first starts still has the device there), where
    ``torch.cuda.is_available()`` is False: knowing it spares importing torch (~1.2 s) in a run that embeds
    nothing."""
    import glob
    import os

    if not sys.platform.startswith("linux") or any(os.path.exists(f) for f in GPU_DRIVER_FILES):
        return False
    for device in glob.glob("/sys/bus/pci/devices/*"):
        try:
            vendor = open(f"{device}/vendor").read().strip()
            kind = open(f"{device}/class").read().strip()
        except OSError:
            continue
        if vendor in ("0x10de", "0x1002") and kind.startswith("0x03"):  # NVIDIA, AMD; a display controller
            return False
    return True


def _torch():
    import torch

    return torch


def size_threads(threads: int | None) -> int:
    """Set torch's CPU threads: ``threads``, or every core this process may use (its CPU affinity, which a
    container or a batch scheduler narrows; torch's own default counts the machine's cores). Decoding is not
    subtracted: it costs ~1 ms per 224 px patch against ~60 ms for a ViT-B/32 forward on one core, so
    leaving a core to the decoders halves the forward throughput (benchmarks/gpu_pipeline.py on 2 cores:
    pipeline / forward 0.47 with 1 thread, 1.04 with 2). Before torch is loaded (a run may never need it), the
    count goes to ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS``, which torch reads when it loads. Returns the
    count."""
    import os

    from pathboard.core.paths import usable_cpus

    threads = max(1, usable_cpus() if threads is None else threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    else:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    return threads


class EmbeddingModel(ABC):
    """A loaded model. Both encoders return L2-normalised float32 tensors on the CPU; a patch encoder whose raw
    features a slide encoder reads (CONCH v1.5 for TITAN, Virchow for PRISM) says ``normalise = False`` and
    returns them as the model makes them."""

    id: str
    fingerprint: str
    capabilities: frozenset[str] = frozenset({"image", "text"})
    #: PIL image -> CHW float tensor; must be picklable (it runs in DataLoader workers)
    preprocess: Callable

    @property
    @abstractmethod
    def logit_scale(self) -> float: ...

    @abstractmethod
    def encode_images(self, batch: torch.Tensor) -> torch.Tensor: ...

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        raise PathboardError(f"model {self.id} has no text tower")

    def parameter_count(self) -> int | None:
        """Parameters of the loaded network (image and text towers), or None when unknown."""
        module = getattr(self, "model", None)
        parameters = getattr(module, "parameters", None)
        return int(sum(p.numel() for p in parameters())) if callable(parameters) else None


class TorchCLIPModel(EmbeddingModel):
    """Device, precision, batching and normalisation for a torch CLIP-style ``model``.

    Subclasses only say how to get raw features: ``image_features(batch)`` for a batch already on
    the device, and ``text_features(texts)`` for at most ``text_batch`` strings.
    """

    text_batch = 256
    #: L2-normalise the image features (False: a patch encoder's raw features, as slide encoders read them)
    normalise = True

    def __init__(self, id: str, fingerprint: str, model, preprocess: Callable, tokenizer, runtime: Runtime):
        self.id, self.fingerprint = id, fingerprint
        self.model, self.preprocess, self.tokenizer, self.runtime = model, preprocess, tokenizer, runtime

    @property
    def logit_scale(self) -> float:
        return float(self.model.logit_scale.detach().exp())

    @abstractmethod
    def image_features(self, batch: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def text_features(self, texts: list[str]) -> torch.Tensor: ...

    def encode_images(self, batch: torch.Tensor) -> torch.Tensor:
        import torch

        with torch.inference_mode():
            with self.runtime.autocast():
                layout = torch.channels_last if self.runtime.channels_last and batch.dim() == 4 else \
                    torch.preserve_format
                # pinned batches (the DataLoader pins on CUDA) copy asynchronously, overlapping the last forward
                feats = self.image_features(batch.to(self.runtime.device, non_blocking=True, memory_format=layout))
            return (l2_normalise(feats) if self.normalise else feats.float()).cpu()

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        import torch

        with torch.inference_mode():
            out = []
            for i in range(0, len(texts), self.text_batch):
                with self.runtime.autocast():
                    out.append(l2_normalise(self.text_features(texts[i : i + self.text_batch])).cpu())
            return torch.cat(out)


class PatchEncoderModel(TorchCLIPModel):
    """A patch encoder with no text tower whose raw features a slide encoder reads (CONCH v1.5 for TITAN, Virchow for
    PRISM): image features are returned as the model makes them, not L2-normalised. Subclasses say
    ``image_features(batch)``."""

    normalise = False

    def text_features(self, texts):
        raise PathboardError(f"{self.id} has no text tower")

    @property
    def logit_scale(self) -> float:
        raise AttributeError(f"{self.id} has no logit scale")


@dataclass
class ModelCard:
    """What the leaderboard and ``pathboard list models --details`` show about a model."""

    title: str = ""
    paper: str = ""
    license: str = ""
    url: str = ""
    gated: bool = False
    params: str = ""  # e.g. "150M" (image + text towers)
    embed_dim: int | None = None
    input_size: int | None = None  # image side in pixels
    context_length: int = 77  # tokens the text tower reads (CLIP BPE: 77; PubMedBERT towers: 256)
    notes: str = ""


@dataclass
class ModelSpec(ABC):
    """A registered model: cheap to create, resolves and loads its weights on demand."""

    id: str
    card: ModelCard = field(default_factory=ModelCard)
    capabilities: frozenset[str] = frozenset({"image", "text"})
    #: importable modules the model needs, and how to get them (shown by ``pathboard doctor``)
    requires: tuple[str, ...] = ("torch",)
    install_hint: str = ""

    def identity(self) -> dict:
        """What decides this model's preprocessing and tokenizer besides its weight files (which the weights
        fingerprint covers, configs and tokenizer files of a weights folder included): the spec's own fields
        (architecture, hub ids, ...) and the versions of the libraries it loads with. Part of every cache key,
        so an upgrade of open_clip or transformers, or another architecture, never reuses old embeddings."""
        import dataclasses
        import importlib.metadata

        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("card", "id")}
        versions = {}
        for module in self.requires:
            for dist in module_distributions(module.split(".")[0]):
                try:
                    versions[dist] = importlib.metadata.version(dist)
                except importlib.metadata.PackageNotFoundError:
                    pass
        return {"spec": f"{type(self).__module__}.{type(self).__qualname__}",
                "fields": json.loads(json.dumps(fields, sort_keys=True, default=_canonical)), "libraries": versions}

    @abstractmethod
    def resolve(self, override: Weights | None = None) -> Weights:
        """Find the weights (no loading); raise WeightsNotFoundError with what to fetch."""

    @abstractmethod
    def load(self, weights: Weights, runtime: Runtime) -> EmbeddingModel: ...


@functools.cache
def module_distributions(module: str) -> tuple[str, ...]:
    """The installed distributions that provide the top-level ``module``: what
    ``importlib.metadata.packages_distributions().get(module, [])`` says (a distribution's ``top_level.txt``,
    else the top-level names of the ``.py`` files its RECORD lists), without parsing every distribution's
    metadata for its name (~0.25 s a process); only the names of those that provide it are read."""
    import importlib.metadata

    names = []
    for dist in importlib.metadata.distributions():
        declared = (dist.read_text("top_level.txt") or "").split()
        if declared:
            found = module in declared
        else:
            paths = (line.split(",", 1)[0].strip('"') for line in (dist.read_text("RECORD") or "").splitlines())
            found = any(path.endswith(".py") and (path.startswith(module + "/") or path == module + ".py")
                        for path in paths)
        if found:
            names.append(dist.metadata["Name"])
    return tuple(names)


def _canonical(value):
    """JSON for what json cannot write: sets sorted (their repr's order changes between processes)."""
    return sorted(map(str, value)) if isinstance(value, (set, frozenset)) else str(value)


def l2_normalise(x: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.nn.functional.normalize(x.float(), dim=-1)
