"""A third-party pathboard plugin: one open_clip model, registered through the public hook."""
from pathboard.api import ModelCard, OpenCLIPSpec, hookimpl


@hookimpl
def register_models(register):
    register(OpenCLIPSpec(
        id="example-clip",
        hub="hf-hub:example-lab/example-clip",  # or: pathboard run --weights example-clip=DIR
        card=ModelCard(title="Example CLIP (third-party plugin)", license="MIT"),
    ))
