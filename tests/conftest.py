import os
import sys
import tempfile
from pathlib import Path

# Before anything imports huggingface_hub: a private, offline HF cache for the whole session.
_SESSION = Path(tempfile.mkdtemp(prefix="pathboard-tests-"))
os.environ["HF_HOME"] = str(_SESSION / "hf")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["PATHBOARD_CACHE"] = str(_SESSION / "cache")
os.environ["PATHBOARD_CONFIG"] = str(_SESSION / "config.toml")
os.environ.pop("PATHBOARD_DATA", None)

import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from tiny import install_tiny_hub  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO.parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED / "CRC-VAL-HE-7K").is_dir():
        pytest.fail(f"the real sample data is missing: expected {SHARED} (see DEVELOPERS docs)")
    return SHARED


@pytest.fixture(scope="session")
def tiny_hub() -> Path:
    """HF_HOME holding tiny QuiltNet-B-32 and PLIP snapshots in their real cache layout."""
    install_tiny_hub(Path(os.environ["HF_HOME"]), _SESSION / "build")
    return Path(os.environ["HF_HOME"])


@pytest.fixture()
def fresh_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("PATHBOARD_CACHE", str(cache))
    return cache
