"""open_clip models: an ``hf-hub:`` repo, a ``local-dir:``, or a built-in architecture + checkpoint.

A Hugging Face transformer text tower (BiomedCLIP, QuiltNet-B-16-PMB) is built from local files that
:mod:`pathboard.adapters.hf_text_tower` finds.
"""
from __future__ import annotations

from dataclasses import dataclass

from pathboard.adapters.hf_text_tower import hf_text_tower
from pathboard.core.errors import PathboardError, WeightsNotFoundError
from pathboard.core.interfaces.model import EmbeddingModel, ModelSpec, Runtime, TorchCLIPModel
from pathboard.core.interfaces.weights import Weights, from_hub

WEIGHT_FILES = ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]


@dataclass
class OpenCLIPSpec(ModelSpec):
    """``hub="hf-hub:org/repo"`` (a repo with ``open_clip_config.json``), or ``arch`` (an open_clip
    architecture name such as ``ViT-B-16-quickgelu``) with the checkpoint in ``pretrained_repo`` on
    the hub or given by ``--weights ID=FILE``. A ``--weights ID=DIR`` holding
    ``open_clip_config.json`` and the weights loads as ``local-dir:DIR``; if its text tower is a Hugging
    Face transformer, DIR must also hold that transformer's ``config.json`` and tokenizer files."""

    hub: str | None = None
    arch: str | None = None
    pretrained_repo: str | None = None
    #: the checkpoint's file name(s) in ``pretrained_repo`` (default: open_clip's standard names)
    weight_files: tuple[str, ...] = tuple(WEIGHT_FILES)
    requires: tuple[str, ...] = ("torch", "open_clip")

    def resolve(self, override: Weights | None = None) -> Weights:
        gated = self.card.gated
        if override is not None:
            weights = override
        elif self.hub:
            weights = from_hub(self.id, self._repo, ["open_clip_config.json"], WEIGHT_FILES, gated=gated)
        elif self.pretrained_repo:
            weights = from_hub(self.id, self.pretrained_repo, [], list(self.weight_files), gated=gated)
        else:
            raise WeightsNotFoundError(f"weights for {self.id} are not published: pass --weights {self.id}=PATH")
        hf_text_tower(self.id, weights, self._repo)  # fail now, in one line, if the text tower's files are missing
        return weights

    @property
    def _repo(self) -> str | None:
        return self.hub.removeprefix("hf-hub:") if self.hub else None

    def load(self, weights: Weights, runtime: Runtime) -> EmbeddingModel:
        import open_clip

        path = weights.path
        # a built-in OpenAI-style architecture is authoritative for its checkpoints: a config shipped
        # beside them may lack quick_gelu, and open_clip 3 would then build plain-GELU towers
        arch_wins = bool(self.arch and self.pretrained_repo)
        if path.is_dir() and (path / "open_clip_config.json").is_file() and not arch_wins:
            name, pretrained = f"local-dir:{path}", None
        else:
            if path.is_dir():
                found = [path / f for f in self.weight_files if (path / f).is_file()]
                if not found:
                    raise WeightsNotFoundError(f"{self.id}: no {' or '.join(self.weight_files)} in {path}")
                path = found[0]
            if not self.arch:
                raise PathboardError(
                    f"{self.id}: {path} is a bare checkpoint; point --weights at a directory with "
                    "open_clip_config.json beside the weights"
                )
            name, pretrained = self.arch, str(path)
        tower = hf_text_tower(self.id, weights, self._repo)
        if tower is None:
            model, preprocess = open_clip.create_model_from_pretrained(
                name, pretrained=pretrained, device=runtime.device, return_transform=True
            )
            tokenizer = open_clip.get_tokenizer(name)
        else:
            # the full checkpoint holds the text weights: build the tower from its local config only
            text_cfg = {**tower.text_cfg, "hf_model_name": str(tower.config_dir),
                        "hf_tokenizer_name": str(tower.tokenizer_dir), "hf_model_pretrained": False}
            model, preprocess = open_clip.create_model_from_pretrained(
                name, device=runtime.device, return_transform=True, text_cfg=text_cfg
            )
            tokenizer = tower.tokenizer()
        return OpenCLIPModel(self.id, weights.fingerprint, model.eval(), preprocess, tokenizer, runtime)


class OpenCLIPModel(TorchCLIPModel):
    def image_features(self, batch):
        return self.model.encode_image(batch)

    def text_features(self, texts):
        return self.model.encode_text(self.tokenizer(texts).to(self.runtime.device))
