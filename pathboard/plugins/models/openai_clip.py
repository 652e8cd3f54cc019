"""OpenAI CLIP (Radford et al., 2021): the general-domain baseline every paper reports."""
from pathboard.api import ModelCard, OpenCLIPSpec, hookimpl

PAPER = "Radford et al., Learning Transferable Visual Models From Natural Language Supervision, ICML 2021"


@hookimpl
def register_models(register):
    for id, arch, repo, title, params, dim in [
        ("openai-clip-b16", "ViT-B-16-quickgelu", "timm/vit_base_patch16_clip_224.openai", "ViT-B/16", "150M", 512),
        ("openai-clip-l14", "ViT-L-14-quickgelu", "timm/vit_large_patch14_clip_224.openai", "ViT-L/14", "428M", 768),
    ]:
        register(OpenCLIPSpec(
            id=id, arch=arch, pretrained_repo=repo,
            card=ModelCard(title=f"OpenAI CLIP {title}", paper=PAPER, license="MIT", params=params,
                           embed_dim=dim, input_size=224, url=f"https://huggingface.co/{repo}"),
        ))
