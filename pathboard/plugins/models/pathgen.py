"""PathGen-CLIP (Sun et al., PathGen-1.6M, ICLR 2025): CLIP trained on generated pathology captions.

Both checkpoints are open_clip training checkpoints (``{"state_dict": {"module.…"}}``) for a built-in
OpenAI-style architecture; open_clip unwraps them. Both hub repos are gated.
"""
from pathboard.api import ModelCard, OpenCLIPSpec, hookimpl

PAPER = "Sun et al., PathGen-1.6M: 1.6 Million Pathology Image-text Pairs Generation through Multi-agent " \
        "Collaboration, ICLR 2025"


@hookimpl
def register_models(register):
    for id, arch, repo, file, params, dim, size in [
        ("pathgen-clip", "ViT-B-16-quickgelu", "jamessyx/PathGen-CLIP", "pathgen-clip.pt", "150M", 512, 224),
        ("pathgen-clip-l", "ViT-L-14-336-quickgelu", "jamessyx/PathGen-CLIP-L", "pathgen-clip-l.pt", "428M", 768, 336),
    ]:
        register(OpenCLIPSpec(
            id=id, arch=arch, pretrained_repo=repo, weight_files=(file,),
            card=ModelCard(title=f"PathGen-CLIP ({arch.removesuffix('-quickgelu')})", paper=PAPER, gated=True,
                           license="see the model card (gated)", params=params, embed_dim=dim, input_size=size,
                           url=f"https://huggingface.co/{repo}"),
        ))
