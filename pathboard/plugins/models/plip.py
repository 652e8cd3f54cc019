"""PLIP (Huang et al., Nature Medicine 2023): CLIP fine-tuned on OpenPath (Twitter)."""
from pathboard.api import HFCLIPSpec, ModelCard, hookimpl


@hookimpl
def register_models(register):
    register(HFCLIPSpec(
        id="plip", repo="vinid/plip",
        card=ModelCard(title="PLIP", paper="Huang et al., Nature Medicine 2023", license="see model card",
                       url="https://huggingface.co/vinid/plip",
                       params="151M", embed_dim=512, input_size=224),
    ))
