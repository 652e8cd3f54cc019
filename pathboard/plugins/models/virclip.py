"""VirCLIP: unpublished, so its weights are wherever the user has them.

This is also the documented recipe for any private open_clip model: a folder holding
``open_clip_config.json`` and ``open_clip_pytorch_model.bin`` (or ``open_clip_model.safetensors``),
given as ``--weights virclip=DIR`` or in the ``[weights]`` table of the config file. Until measured,
the leaderboard shows VirCLIP's reported row.
"""
from pathboard.api import ModelCard, OpenCLIPSpec, hookimpl


@hookimpl
def register_models(register):
    register(OpenCLIPSpec(
        id="virclip",
        card=ModelCard(title="VirCLIP (private weights)", license="unpublished",
                       notes="point pathboard at a folder with open_clip_config.json + open_clip_pytorch_model.bin"),
    ))
