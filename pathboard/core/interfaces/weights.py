"""Where a model's weights are: --weights, the user config file, the Hugging Face cache, or the hub.

Resolution order for a model id:
1. ``--weights ID=PATH`` on the command line;
2. ``[weights]`` in the user config (``$PATHBOARD_CONFIG``, else ``~/.config/pathboard/config.toml``);
3. the Hugging Face cache (``$HF_HOME``/``$HF_HUB_CACHE``), looked up without touching the network;
4. a download from the hub, unless ``HF_HUB_OFFLINE=1``.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pathboard.core.errors import PathboardError, WeightsNotFoundError
from pathboard.core.paths import cache_root, write_cached

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def config_path() -> Path:
    env = os.environ.get("PATHBOARD_CONFIG")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "pathboard" / "config.toml"


def overrides(cli: tuple[str, ...] | list[str] = ()) -> dict[str, tuple[Path, str]]:
    """Model id -> (path, where the mapping came from), the command line winning over the config."""
    found: dict[str, tuple[Path, str]] = {}
    cfg = config_path()
    if cfg.is_file():
        try:
            table = tomllib.loads(cfg.read_text()).get("weights", {})
        except tomllib.TOMLDecodeError as exc:
            raise PathboardError(f"cannot parse {cfg}: {exc}") from None
        for key, value in table.items():
            found[key] = (Path(value).expanduser(), f"config {cfg}")
    for entry in cli:
        key, sep, value = entry.partition("=")
        if not sep or not key or not value:
            raise PathboardError(f"--weights expects ID=PATH, got {entry!r}")
        found[key.strip()] = (Path(value.strip()).expanduser(), "--weights")
    for key, (path, origin) in found.items():
        if not path.exists():
            raise WeightsNotFoundError(f"weights for {key} ({origin}) not found at {path}")
    return found


def trusted(cli: tuple[str, ...] | list[str] = ()) -> frozenset[str]:
    """Model ids allowed to run code from their weights repository: ``--trust-remote-code ID,ID`` and the config
    file's ``trust_remote_code = ["ID", ...]``."""
    ids = {i.strip() for entry in cli for i in str(entry).split(",") if i.strip()}
    cfg = config_path()
    if cfg.is_file():
        try:
            listed = tomllib.loads(cfg.read_text()).get("trust_remote_code", [])
        except tomllib.TOMLDecodeError as exc:
            raise PathboardError(f"cannot parse {cfg}: {exc}") from None
        if isinstance(listed, str) or not all(isinstance(i, str) for i in listed):
            raise PathboardError(f"{cfg}: trust_remote_code must be a list of model ids, e.g. [\"titan\", \"prism\"]")
        ids |= set(listed)
    return frozenset(ids)


@dataclass(frozen=True)
class Weights:
    """A resolved weights location: a directory (hub snapshot or local dir) or a checkpoint file."""

    path: Path
    origin: str

    def files(self) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        return sorted(p for p in self.path.iterdir() if p.is_file() and not p.name.endswith(".md"))

    @property
    def fingerprint(self) -> str:
        """sha256 over the bytes of every file that defines the model (never its name)."""
        h = hashlib.sha256()
        for f in self.files():
            h.update(f.name.encode() + b"\0" + _file_sha256(f).encode() + b"\n")
        return h.hexdigest()


def _file_sha256(path: Path) -> str:
    """Hash a file, remembering the answer per (real path, size, mtime) so big weights hash once."""
    real = path.resolve()
    st = real.stat()
    memo_file = cache_root() / "file-hashes.json"
    key = f"{real}|{st.st_size}|{st.st_mtime_ns}"
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    if key in memo:
        return memo[key]
    h = hashlib.sha256()
    with open(real, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    memo[key] = h.hexdigest()
    write_cached(memo_file, lambda fh: fh.write(json.dumps(memo).encode()))  # only a memo: may fail quietly
    return memo[key]


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def hub_cache() -> Path:
    """The Hugging Face hub cache folder: huggingface_hub's own setting once it is imported (it fixes it then, and
    downloads there whatever the environment says later), else what it would read from the environment."""
    hub = sys.modules.get("huggingface_hub.constants")
    if hub is not None:
        return Path(hub.HF_HUB_CACHE)
    home = os.path.expandvars(os.path.expanduser(
        os.getenv("HF_HOME", os.path.join(os.getenv("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache")),
                                          "huggingface"))))
    legacy = os.getenv("HUGGINGFACE_HUB_CACHE", os.path.join(home, "hub"))
    return Path(os.path.expandvars(os.path.expanduser(os.getenv("HF_HUB_CACHE", legacy))))


def cached_file(repo_id: str, filename: str) -> str | None:
    """``repo_id``'s ``filename`` at its ``main`` revision in the Hugging Face cache, else None; no network.

    ``huggingface_hub.try_to_load_from_cache(repo_id, filename)``'s answer, read from the cache's documented layout
    (``models--ORG--NAME/refs/main`` names the snapshot; ``.no_exist`` marks files the hub said are absent) without
    importing huggingface_hub, which was most of what finding a cached model cost a run that embeds nothing
    (~0.1 s). In the hub's staging mode huggingface_hub answers itself."""
    if os.environ.get("HUGGINGFACE_CO_STAGING"):
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, filename)
        return found if isinstance(found, str) else None
    repo = hub_cache() / f"models--{repo_id.replace('/', '--')}"
    try:
        revision = (repo / "refs" / "main").read_text()
    except (OSError, UnicodeDecodeError):
        revision = "main"
    hit = repo / "snapshots" / revision / filename
    return str(hit) if hit.is_file() and not (repo / ".no_exist" / revision / filename).is_file() else None


def hub_folder(model_id: str, repo_id: str, override: Weights | None = None, gated: bool = False,
               marker: str = "config.json") -> Weights:
    """The whole folder of a hub repository whose code runs from it (``trust_remote_code``): ``--weights``/config
    folder, else the snapshot in the Hugging Face cache (no network), else a download of the snapshot unless
    ``HF_HUB_OFFLINE=1``. The weights fingerprint hashes every file of the folder, so the code that runs is part of
    every cache key and result."""
    if override is not None:
        if not (override.path / marker).is_file():
            raise WeightsNotFoundError(f"weights for {model_id}: no {marker} in {override.path} (a copy of the "
                                       f"{repo_id} repository is expected)")
        return override
    hit = cached_file(repo_id, marker)
    if hit is None and not offline():
        from huggingface_hub import snapshot_download

        try:
            snapshot_download(repo_id)
        except Exception:
            pass  # reported below as one line, with what to do
        hit = cached_file(repo_id, marker)
    if hit is None:
        fetch = f"run `hf download {repo_id}`"
        if gated:
            fetch = (f"it is gated: accept its licence at https://huggingface.co/{repo_id}, run `hf auth login`, "
                     f"then `hf download {repo_id}`")
        raise WeightsNotFoundError(
            f"weights for {model_id} not found: {fetch}; or pass --weights {model_id}=FOLDER (a copy of the repository)"
            + (" (HF_HUB_OFFLINE is set, so nothing was downloaded)" if offline() else ""))
    return Weights(Path(hit).parent, f"hf-cache:{repo_id}")


def from_hub(
    model_id: str, repo_id: str, required: list[str], weight_files: list[str], optional: Sequence[str] = (),
    gated: bool = False,
) -> Weights:
    """The snapshot directory of ``repo_id`` holding ``required`` and one of ``weight_files``.

    The cache is read first with no network call; only if something is missing, and
    HF_HUB_OFFLINE is not set, are the files downloaded.
    """
    def locate() -> Path | None:
        have = [cached_file(repo_id, f) for f in required]
        weights = next((w for w in (cached_file(repo_id, f) for f in weight_files) if w), None)
        if all(have) and weights:
            return Path(weights).parent
        return None

    snapshot = locate()
    if snapshot is None and not offline():
        from huggingface_hub import hf_hub_download

        try:
            for name in required:
                hf_hub_download(repo_id, name)
            for name in optional:
                try:
                    hf_hub_download(repo_id, name)
                except Exception:
                    continue
            for name in weight_files:
                try:
                    hf_hub_download(repo_id, name)
                    break
                except Exception:
                    continue
        except Exception:
            pass  # reported below as one line, with what to do
        snapshot = locate()
    if snapshot is None:
        fetch = f"run `hf download {repo_id}`"
        if gated:
            fetch = (f"it is gated: accept its licence at https://huggingface.co/{repo_id}, run `hf auth login`, "
                     f"then `hf download {repo_id}`")
        raise WeightsNotFoundError(
            f"weights for {model_id} not found: {fetch}; or put the files in a folder and pass "
            f"--weights {model_id}=PATH" + (" (HF_HUB_OFFLINE is set, so nothing was downloaded)" if offline() else "")
        )
    return Weights(snapshot, f"hf-cache:{repo_id}")
