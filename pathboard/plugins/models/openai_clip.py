"""OpenAI CLIP (Radford et al., 2021): the general-domain baseline every paper reports."""
from pathboard import hookimpl
from pathboard.adapters import OpenCLIPSpec
from pathboard.core.model import ModelCard


@hookimpl
def register_models(register):
    register(OpenCLIPSpec(
        id="openai-clip-b16", arch="ViT-B-16-quickgelu", pretrained_repo="timm/vit_base_patch16_clip_224.openai",
        card=ModelCard(title="OpenAI CLIP ViT-B/16", paper="Radford et al., ICML 2021", license="MIT",
                       url="https://huggingface.co/timm/vit_base_patch16_clip_224.openai",
                       params="150M", embed_dim=512, input_size=224),
    ))
