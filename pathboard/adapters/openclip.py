"""open_clip models: an ``hf-hub:`` repo, a ``local-dir:``, or a built-in architecture + checkpoint."""
from __future__ import annotations

from dataclasses import dataclass

from pathboard.core.errors import PathboardError, WeightsNotFoundError
from pathboard.core.model import EmbeddingModel, ModelSpec, Runtime, TorchCLIPModel
from pathboard.core.weights import Weights, from_hub

WEIGHT_FILES = ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]


@dataclass
class OpenCLIPSpec(ModelSpec):
    """``hub="hf-hub:org/repo"`` (a repo with ``open_clip_config.json``), or ``arch`` (an open_clip
    architecture name such as ``ViT-B-16-quickgelu``) with the checkpoint in ``pretrained_repo`` on
    the hub or given by ``--weights ID=FILE``. A ``--weights ID=DIR`` holding
    ``open_clip_config.json`` and the weights loads as ``local-dir:DIR``."""

    hub: str | None = None
    arch: str | None = None
    pretrained_repo: str | None = None

    def resolve(self, override: Weights | None = None) -> Weights:
        if override is not None:
            return override
        if self.hub:
            repo = self.hub.removeprefix("hf-hub:")
            return from_hub(self.id, repo, ["open_clip_config.json"], WEIGHT_FILES)
        if self.pretrained_repo:
            return from_hub(self.id, self.pretrained_repo, [], WEIGHT_FILES)
        raise WeightsNotFoundError(f"weights for {self.id} are not published: pass --weights {self.id}=PATH")

    def load(self, weights: Weights, runtime: Runtime) -> EmbeddingModel:
        import open_clip

        path = weights.path
        if path.is_dir() and (path / "open_clip_config.json").is_file():
            name, pretrained = f"local-dir:{path}", None
        else:
            if path.is_dir():
                found = [path / f for f in WEIGHT_FILES if (path / f).is_file()]
                if not found:
                    raise WeightsNotFoundError(f"{self.id}: no {' or '.join(WEIGHT_FILES)} in {path}")
                path = found[0]
            if not self.arch:
                raise PathboardError(
                    f"{self.id}: {path} is a bare checkpoint; point --weights at a directory with "
                    "open_clip_config.json beside the weights"
                )
            name, pretrained = self.arch, str(path)
        model, preprocess = open_clip.create_model_from_pretrained(
            name, pretrained=pretrained, device=runtime.device, return_transform=True
        )
        return OpenCLIPModel(self.id, weights.fingerprint, model.eval(), preprocess,
                             open_clip.get_tokenizer(name), runtime)


class OpenCLIPModel(TorchCLIPModel):
    def image_features(self, batch):
        return self.model.encode_image(batch)

    def text_features(self, texts):
        return self.model.encode_text(self.tokenizer(texts).to(self.runtime.device))
