"""QuiltNet (Ikezogwo et al., NeurIPS 2023): CLIP fine-tuned on Quilt-1M."""
from pathboard import hookimpl
from pathboard.adapters import OpenCLIPSpec
from pathboard.core.model import ModelCard


@hookimpl
def register_models(register):
    register(OpenCLIPSpec(
        id="quiltnet-b32", hub="hf-hub:wisdomik/QuiltNet-B-32", arch="ViT-B-32-quickgelu",
        card=ModelCard(title="QuiltNet ViT-B/32", paper="Ikezogwo et al., Quilt-1M, NeurIPS 2023",
                       license="MIT", url="https://huggingface.co/wisdomik/QuiltNet-B-32",
                       params="151M", embed_dim=512, input_size=224),
    ))
