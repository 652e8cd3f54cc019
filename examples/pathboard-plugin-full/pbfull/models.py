"""A custom torch model. Registering it imports no torch: the network lives in ``_net`` and is
imported by ``load``."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pathboard.api import ModelCard, ModelSpec, Runtime, Weights, WeightsNotFoundError, hookimpl

ENV = "PBFULL_WEIGHTS"


@dataclass
class TinyNetSpec(ModelSpec):
    def resolve(self, override: Weights | None = None) -> Weights:
        if override is not None:
            return override
        if os.environ.get(ENV):
            return Weights(Path(os.environ[ENV]), f"${ENV}")
        raise WeightsNotFoundError(f"{self.id}: pass --weights {self.id}=FILE.pt or set {ENV}")

    def load(self, weights: Weights, runtime: Runtime):
        from pbfull._net import TinyNetModel

        return TinyNetModel.from_file(self.id, weights, runtime)


@hookimpl
def register_models(register):
    register(TinyNetSpec(id="pbfull-tinynet", card=ModelCard(title="TinyNet (example)", embed_dim=16,
                                                             input_size=64, params="0.02M")))
