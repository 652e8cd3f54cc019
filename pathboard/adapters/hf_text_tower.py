"""The files of an open_clip model's Hugging Face text tower, found on disk without loading anything.

Models whose text tower is a Hugging Face transformer (BiomedCLIP, QuiltNet-B-16-PMB: PubMedBERT)
name that transformer's repo in ``open_clip_config.json`` (``hf_model_name``/``hf_tokenizer_name``),
and open_clip builds the tower from that repo's ``config.json`` and tokenizer even though the weights
come from the checkpoint. pathboard finds those files offline instead: beside the weights, or (from
the HF cache) in the text repo's own cached snapshot, and points open_clip at them.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from pathboard.core.errors import PathboardError, WeightsNotFoundError
from pathboard.core.interfaces.weights import Weights, cached_file, offline

#: what AutoTokenizer reads from a tokenizer directory
TOKENIZER_FILES = ["tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"]
#: renamed hub repos: the old name still resolves on the hub, and a cache may hold either
TEXT_REPO_ALIASES = {
    "microsoft/BiomedNLP-PubMedBERT-base-uncased-abstract": "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract",
}


@dataclass(frozen=True)
class HFTextTower:
    """Where a Hugging Face text tower's config and tokenizer files are, on disk."""

    text_cfg: dict
    config_dir: Path
    tokenizer_dir: Path

    def tokenizer(self):
        """open_clip's HFTokenizer on the local files, configured as ``open_clip.get_tokenizer`` would."""
        from open_clip.tokenizer import HFTokenizer

        return HFTokenizer(str(self.tokenizer_dir), context_length=self.text_cfg.get("context_length", 77),
                           tokenizer_mode=self.text_cfg.get("tokenizer_mode"),
                           **(self.text_cfg.get("tokenizer_kwargs") or {}))


def hf_text_tower(model_id: str, weights: Weights, model_repo: str | None = None) -> HFTextTower | None:
    """The local files of an open_clip model's Hugging Face text tower; None if it has none.

    A local directory must be self-contained: the text model's ``config.json`` and its tokenizer
    files (``vocab.txt`` + ``tokenizer_config.json``, or ``tokenizer.json``) beside the weights, or in a
    subfolder named after the text repo when ``config.json`` there belongs to another model. From
    the HF cache they may also come from the text repo's own cached snapshot (downloaded unless
    HF_HUB_OFFLINE is set). ``model_repo`` (the model's own hub repo, which ships the tokenizer) is
    named in the advice for a local directory. Raises WeightsNotFoundError, in one line, saying what
    to fetch.
    """
    cfg_file = weights.path / "open_clip_config.json" if weights.path.is_dir() else None
    if cfg_file is None or not cfg_file.is_file():
        return None
    try:
        text_cfg = json.loads(cfg_file.read_text())["model_cfg"]["text_cfg"]
    except (ValueError, KeyError, TypeError) as exc:
        raise PathboardError(f"{model_id}: cannot read {cfg_file}: {exc}") from None
    if not text_cfg.get("hf_model_name"):
        return None
    text_repo = text_cfg["hf_model_name"]
    tok_repo = text_cfg.get("hf_tokenizer_name") or text_repo
    hub_repo = weights.origin.removeprefix("hf-cache:") if weights.origin.startswith("hf-cache:") else None

    def dirs(repo: str) -> list[Path]:
        found = [weights.path] + [weights.path / r.rsplit("/", 1)[-1] for r in _names(repo)]
        if hub_repo:
            found += _cached_snapshots(repo)
        return found

    config_dir = next((d for d in dirs(text_repo) if _is_text_config(d / "config.json")), None)
    tokenizer_dir = next((d for d in dirs(tok_repo) if _has_tokenizer(d)), None)
    if hub_repo and not offline() and (config_dir is None or tokenizer_dir is None):
        _download(hub_repo, tok_repo if tokenizer_dir is None else None, text_repo if config_dir is None else None)
        config_dir = config_dir or next((d for d in dirs(text_repo) if _is_text_config(d / "config.json")), None)
        tokenizer_dir = tokenizer_dir or next((d for d in dirs(tok_repo) if _has_tokenizer(d)), None)

    if config_dir is None:
        repo = TEXT_REPO_ALIASES.get(text_repo, text_repo)
        _missing(model_id, weights, hub_repo, f"{model_id}'s text tower is built from {repo}'s config.json",
                 repo, "config.json")
    if tokenizer_dir is None:
        repo = hub_repo or model_repo or TEXT_REPO_ALIASES.get(tok_repo, tok_repo)
        _missing(model_id, weights, hub_repo, f"{model_id}'s tokenizer needs vocab.txt + tokenizer_config.json",
                 repo, "vocab.txt tokenizer_config.json")
    return HFTextTower(text_cfg, config_dir, tokenizer_dir)


def _missing(model_id: str, weights: Weights, hub_repo: str | None, what: str, repo: str, files: str):
    if hub_repo:
        raise WeightsNotFoundError(
            f"{what}, which is not in the HF cache: run `hf download {repo} {files}` (just that: the tower's "
            f"weights are in the checkpoint), or pass --weights {model_id}=DIR holding it beside the weights"
            + (" (HF_HUB_OFFLINE is set, so nothing was downloaded)" if offline() else ""))
    target = weights.path
    if files == "config.json" and (weights.path / "config.json").is_file():
        target = weights.path / repo.rsplit("/", 1)[-1]  # DIR/config.json is another model's
    raise WeightsNotFoundError(
        f"{what}, which {weights.path} must hold (a local directory is self-contained): "
        f"run `hf download {repo} {files} --local-dir {target}`")


def _names(repo: str) -> list[str]:
    """``repo`` and the names it is also known by on the hub."""
    names = [repo, TEXT_REPO_ALIASES.get(repo)]
    names += [old for old, new in TEXT_REPO_ALIASES.items() if new == repo]
    return list(dict.fromkeys(n for n in names if n))


def _cached_snapshots(repo: str) -> list[Path]:
    """Snapshot directories of ``repo`` (under any of its names) in the HF cache; no network."""
    found = []
    for name in _names(repo):
        for f in ["config.json", *TOKENIZER_FILES]:
            hit = cached_file(name, f)
            if hit is not None:
                found.append(Path(hit).parent)
    return list(dict.fromkeys(found))


def _is_text_config(path: Path) -> bool:
    """A transformers config of a text model open_clip can wrap (not, e.g., a repo's CLIP config)."""
    archs = _open_clip_text_archs()
    try:
        return json.loads(path.read_text()).get("model_type") in archs
    except (OSError, ValueError, AttributeError):
        return False


@functools.cache
def _open_clip_text_archs() -> frozenset[str]:
    """The keys of ``open_clip.hf_configs.arch_dict``. That file is a plain dict literal, so it is run on
    its own: importing it as ``open_clip.hf_configs`` would import open_clip, and torch, just to resolve."""
    module = sys.modules.get("open_clip.hf_configs")
    if module is None:
        spec = importlib.util.find_spec("open_clip")
        if spec is None:
            raise ImportError("No module named 'open_clip'", name="open_clip")
        try:
            path = Path(next(iter(spec.submodule_search_locations))) / "hf_configs.py"
            file_spec = importlib.util.spec_from_file_location("_pathboard_open_clip_hf_configs", path)
            module = importlib.util.module_from_spec(file_spec)
            file_spec.loader.exec_module(module)
            return frozenset(module.arch_dict)
        except (OSError, ImportError, SyntaxError, NameError, AttributeError, TypeError, StopIteration):
            import open_clip.hf_configs as module  # laid out otherwise, or the file grew imports
    return frozenset(module.arch_dict)


def _has_tokenizer(d: Path) -> bool:
    vocab = (d / "tokenizer.json").is_file() or (d / "vocab.txt").is_file()
    return vocab and ((d / "tokenizer_config.json").is_file() or _is_text_config(d / "config.json"))


def _download(model_repo: str, tok_repo: str | None, text_repo: str | None) -> None:
    """Fetch the missing text-tower files: the tokenizer from the model repo if it ships one, else
    from the text repo; the text model's config.json from the text repo. Failures are reported by
    the caller, in one line."""
    from huggingface_hub import hf_hub_download

    def fetch(repo: str, names: list[str]) -> bool:
        got = False
        for name in names:
            try:
                hf_hub_download(repo, name)
                got = True
            except Exception:
                continue
        return got

    if tok_repo and not fetch(model_repo, TOKENIZER_FILES):
        fetch(tok_repo, TOKENIZER_FILES + (["config.json"] if text_repo is None else []))
    if text_repo:
        fetch(text_repo, ["config.json"] + (TOKENIZER_FILES if tok_repo == text_repo else []))
