"""QuiltNet (Ikezogwo et al., NeurIPS 2023): CLIP fine-tuned on Quilt-1M."""
from pathboard.api import ModelCard, OpenCLIPSpec, hookimpl

PAPER = "Ikezogwo et al., Quilt-1M, NeurIPS 2023"


@hookimpl
def register_models(register):
    register(OpenCLIPSpec(
        id="quiltnet-b32", hub="hf-hub:wisdomik/QuiltNet-B-32", arch="ViT-B-32-quickgelu",
        card=ModelCard(title="QuiltNet ViT-B/32", paper=PAPER,
                       license="MIT", url="https://huggingface.co/wisdomik/QuiltNet-B-32",
                       params="151M", embed_dim=512, input_size=224),
    ))
    # its open_clip_config.json is plain ViT-B-16 (GELU, no quick_gelu), so is the bare-checkpoint arch
    register(OpenCLIPSpec(
        id="quiltnet-b16", hub="hf-hub:wisdomik/QuiltNet-B-16", arch="ViT-B-16",
        card=ModelCard(title="QuiltNet ViT-B/16", paper=PAPER,
                       license="MIT", url="https://huggingface.co/wisdomik/QuiltNet-B-16",
                       params="150M", embed_dim=512, input_size=224),
    ))
    # timm ViT-B/16 + PubMedBERT text tower (context 256): needs that BERT's config.json as well
    register(OpenCLIPSpec(
        id="quiltnet-b16-pmb", hub="hf-hub:wisdomik/QuiltNet-B-16-PMB",
        card=ModelCard(title="QuiltNet ViT-B/16 + PubMedBERT", paper=PAPER,
                       license="MIT", url="https://huggingface.co/wisdomik/QuiltNet-B-16-PMB",
                       params="196M", embed_dim=512, input_size=224, context_length=256,
                       notes="text tower config from microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract"),
    ))
