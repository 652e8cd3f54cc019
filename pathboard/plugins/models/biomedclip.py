"""BiomedCLIP (Zhang et al., 2023; NEJM AI 2024): ViT-B/16 + PubMedBERT trained on PMC-15M."""
from pathboard.api import ModelCard, OpenCLIPSpec, hookimpl


@hookimpl
def register_models(register):
    # open_clip builds the PubMedBERT tower (context 256) from the config of
    # microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract; the adapter finds it offline
    register(OpenCLIPSpec(
        id="biomedclip", hub="hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224",
        card=ModelCard(title="BiomedCLIP (PubMedBERT-256, ViT-B/16)",
                       paper="Zhang et al., arXiv 2303.00915 (2023); NEJM AI 2024", license="MIT",
                       url="https://huggingface.co/microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224",
                       params="196M", embed_dim=512, input_size=224, context_length=256,
                       notes="text tower config from microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract"),
    ))
