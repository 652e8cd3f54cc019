"""What KEP and KEEP share, for any CLIP-style model whose text tower is a BERT: :class:`BertCLIPModel` (the
loaded model: image tower, BERT text tower, WordPiece tokenizer), strict checkpoint loading and their
ImageNet preprocessing. Everything is read from the weights directory; nothing touches the network."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pathboard.core.errors import PathboardError, WeightsNotFoundError
from pathboard.core.interfaces.model import TorchCLIPModel

if TYPE_CHECKING:
    import torch
    from torchvision import transforms as T

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CONTEXT = 256  # both papers' inference code tokenises with max_length=256
# BERT buffers that transformers < 4.31 saved with the weights; rebuilt on construction, never learned
LEGACY_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")


def imagenet_transform(size: int = 224) -> T.Compose:
    """Bicubic resize of the short side, centre crop, ImageNet mean/std (both repos' inference code)."""
    from torchvision import transforms as T

    return T.Compose([T.Resize(size, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(size),
                      T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def bert(config) -> torch.nn.Module:
    """A randomly initialised ``BertModel`` (with its pooler) from a ``BertConfig`` or a config dict."""
    from transformers import BertConfig, BertModel

    if isinstance(config, dict):
        config = BertConfig(**{k: v for k, v in config.items() if k != "model_type"})
    return BertModel(config, add_pooling_layer=True)


def wordpiece_tokenizer(directory: Path, model_id: str):
    """The uncased WordPiece tokenizer in ``directory`` (vocab.txt + tokenizer_config.json), checked to
    really tokenise: a tokenizer built wrongly maps every word to [UNK] without complaint."""
    from transformers import BertTokenizer

    tok = BertTokenizer.from_pretrained(str(directory), do_lower_case=True, local_files_only=True)
    words = [w for w in tok.get_vocab() if w.isalpha() and w.islower()][:64]
    ids = tok(" ".join(words), add_special_tokens=False)["input_ids"]
    if not words or all(i == tok.unk_token_id for i in ids):
        raise PathboardError(f"{model_id}: the tokenizer in {directory} maps every word to [UNK]; "
                             "its vocab.txt is missing or broken")
    return tok


def tokenize(tokenizer, texts: list[str], max_length: int, device: str) -> dict:
    """Padded to the longest text: with the attention mask this gives the same pooled output as the
    papers' padding to ``max_length``, for less work."""
    tokens = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {k: v.to(device) for k, v in tokens.items()}


def require_files(model_id: str, directory: Path, groups: list[tuple[str, ...]], hint: str) -> None:
    """One line naming what a local weights directory lacks; each group needs one of its files."""
    if not directory.is_dir():
        raise WeightsNotFoundError(f"weights for {model_id}: {directory} is not a directory; {hint}")
    lacking = [" or ".join(g) for g in groups if not any((directory / f).is_file() for f in g)]
    if lacking:
        raise WeightsNotFoundError(f"weights for {model_id}: {directory} has no {', '.join(lacking)}; {hint}")


def load_strict(model: torch.nn.Module, state_dict: dict, model_id: str, source: Path) -> None:
    """Every key of the checkpoint and of the model must match (legacy BERT buffers aside)."""
    state_dict = {k: v for k, v in state_dict.items() if not k.endswith(LEGACY_BUFFERS)}
    try:
        missing, unexpected = model.load_state_dict(state_dict, strict=False)
    except RuntimeError as exc:  # shape mismatches
        detail = " ".join(str(exc).split())
        raise PathboardError(f"{model_id}: {source} does not fit the model: {_clip(detail)}") from None
    if missing or unexpected:
        raise PathboardError(f"{model_id}: {source} does not match the model: "
                             f"missing keys {_few(missing)}; unexpected keys {_few(unexpected)}")


def _few(keys: list[str], n: int = 4) -> str:
    if not keys:
        return "none"
    return ", ".join(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")


def _clip(text: str, n: int = 400) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


class BertCLIPModel(TorchCLIPModel):
    """A loaded CLIP-style model with a BERT text tower (KEP-CTP, KEEP). Its torch ``model`` has
    ``encode_image(batch)``, ``encode_text(tokens)`` (tokens: the tokenizer's dict of tensors) and
    ``bert_config`` (the text tower's ``BertConfig``); texts are tokenised with the WordPiece ``tokenizer``
    (:func:`wordpiece_tokenizer`) up to :data:`CONTEXT` tokens, or the tower's own limit if smaller."""

    def image_features(self, batch):
        return self.model.encode_image(batch)

    def text_features(self, texts):
        limit = min(CONTEXT, self.model.bert_config.max_position_embeddings)
        return self.model.encode_text(tokenize(self.tokenizer, texts, limit, self.runtime.device))
