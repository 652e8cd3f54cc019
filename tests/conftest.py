"""What every test shares: an offline, private environment, the real sample data, tiny models in their real
on-disk layouts, and the expensive runs several test modules read (each built once per session, by the first pytest-xdist worker
that needs it: ``once_per_session``)."""
import csv
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
if os.environ.get("PYTEST_XDIST_WORKER"):  # one thread per worker process: the workers already fill the cores
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")

import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from support.helpers import once_per_session, pathboard  # noqa: E402
from support.layouts import (  # noqa: E402
    write_cesc,
    write_gtex,
    write_pannuke,
    write_reports,
    write_tils,
    write_tissuenet_slides,
)
from support.tiny import install_tiny_hub  # noqa: E402
from support.trained import TRAIN_PER_CLASS, train_tiny_clip  # noqa: E402

from pathboard.core.engine import plugins  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO.parent / "shared" / "data").resolve()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Browser and Ray tests are slow."""
    for item in items:
        if item.get_closest_marker("browser") or item.get_closest_marker("ray"):
            item.add_marker(pytest.mark.slow)


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


#: the slide models' stand-ins and the hub repositories they stand in for
SLIDE_REPOS = {"titan": "MahmoodLab/TITAN", "prism": "paige-ai/Prism", "virchow": "paige-ai/Virchow"}


@pytest.fixture(scope="session")
def slide_hub(tiny_hub) -> Path:
    """HF_HOME (the tiny hub's) also holding the TITAN, PRISM and Virchow stand-ins (pathboard.testing's writers) in
    the HF cache layout under their real repo ids."""
    from pathboard.testing import hf_snapshot, write_prism, write_titan, write_virchow

    for name, write in (("titan", write_titan), ("prism", write_prism), ("virchow", write_virchow)):
        folder = write(_SESSION / "build" / name)
        hf_snapshot(tiny_hub, SLIDE_REPOS[name], {f.name: f for f in folder.iterdir() if f.is_file()})
    return tiny_hub


@pytest.fixture(scope="session")
def slides_root(tmp_path_factory, shared_data) -> Path:
    """TCGA-CESC in the GDC layout (10 slides of 9 cases, 7 labelled) with TCGA-Reports for 6 cases."""
    def build(folder):
        root = folder / "data"
        write_cesc(root, shared_data / "slides" / "CMU-1-Small-Region.svs")
        cases = ["TCGA-C5-A1BE", "TCGA-EK-A2RE", "TCGA-FU-A3HZ", "TCGA-Q1-A5R1", "TCGA-C5-A7CK", "TCGA-C5-A2LX"]
        write_reports(root, {c: REPORT.format(kind="squamous" if i % 2 else "adeno") + c for i, c in enumerate(cases)})
        return root

    return once_per_session(tmp_path_factory, "slides-root", build)


@pytest.fixture()
def fresh_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("PATHBOARD_CACHE", str(cache))
    return cache


@pytest.fixture(scope="session")
def crc_runs(shared_data, tiny_hub, tmp_path_factory):
    """zeroshot on CRC-VAL-HE-7K with two models, then prompt-sensitivity on the now cached images."""
    def build(folder):
        db, env = folder / "pb.duckdb", {"PATHBOARD_CACHE": str(folder / "cache")}
        common = ["--models", "quiltnet-b32,plip", "--datasets", "crc-val-he-7k", "--data-root", shared_data,
                  "--db", db, "--workers", "0"]
        first = pathboard("run", *common, "--tasks", "zeroshot", env=env)
        second = pathboard("run", *common, "--tasks", "prompt-sensitivity", env=env)
        return db, first, second

    return once_per_session(tmp_path_factory, "crc-runs", build)


@pytest.fixture(scope="session")
def robust_run(shared_data, tiny_hub, tmp_path_factory):
    """Robustness, zero-shot and prompt sensitivity of one model on CRC-VAL-HE-7K; then robustness rescored from
    the embedding cache."""
    def build(folder):
        db, env = folder / "pb.duckdb", {"PATHBOARD_CACHE": str(folder / "cache")}
        args = ["run", "--models", "quiltnet-b32", "--datasets", "crc-val-he-7k", "--tasks",
                "robustness,zeroshot,prompt-sensitivity",
                "--prompt-modes", "single", "--data-root", shared_data, "--db", db, "--workers", "1"]
        again = [*args[:6], "robustness", *args[7:], "--rescore"]  # the perturbed embeddings, from the cache
        return db, pathboard(*args, env=env), pathboard(*again, env=env)

    return once_per_session(tmp_path_factory, "robust-run", build)


REPORT = ("FINAL SURGICAL PATHOLOGY REPORT. Cervix, radical hysterectomy: invasive carcinoma, "
          "{kind}, moderately differentiated, depth of invasion 8 mm; lymphovascular invasion present. " * 4)


@pytest.fixture(scope="session")
def cervix_root(tmp_path_factory, shared_data):
    return once_per_session(tmp_path_factory, "cervix-root", lambda folder: write_cervix(folder / "data", shared_data))


def write_cervix(root, shared_data):
    """Every cervix set in its official layout under ``root``."""
    svs = shared_data / "slides" / "CMU-1-Small-Region.svs"
    write_tils(root)
    write_pannuke(root)
    write_tissuenet_slides(root)
    write_cesc(root, svs)
    cases = ["TCGA-C5-A1BE", "TCGA-EK-A2RE", "TCGA-FU-A3HZ", "TCGA-Q1-A5R1", "TCGA-C5-A7CK"]
    write_reports(root, {c: REPORT.format(kind="squamous" if i % 2 else "adeno") + c for i, c in enumerate(cases)})
    write_gtex(root, svs)
    with open(root / "GTEx" / "GTEx Portal.csv", "a", newline="") as fh:  # two more donors, both sites each
        for donor in ("GTEX-222AA", "GTEX-333BB"):
            for part, site in (("0126", "Cervix - Ectocervix"), ("0226", "Cervix - Endocervix")):
                csv.writer(fh).writerow([f"{donor}-{part}", site, donor, "female", "40-49", "", "", ""])
                (root / "GTEx" / f"{donor}-{part}.svs").symlink_to(svs)
    return root


@pytest.fixture(scope="session")
def cervix_run(cervix_root, tiny_hub, tmp_path_factory):
    """The cervix benchmark with two models; then every cell of one of them rescored from the embedding cache."""
    def build(folder):
        db, env = folder / "pb.duckdb", {"PATHBOARD_CACHE": str(folder / "cache")}
        args = ["run", "--models", "quiltnet-b32,plip", "--datasets", "cervix", "--data-root", cervix_root,
                "--db", db, "--workers", "0"]
        again = [*args[:2], "quiltnet-b32", *args[3:], "--rescore"]  # every task from the cache (one model is enough)
        return db, pathboard(*args, env=env), pathboard(*again, env=env)

    return once_per_session(tmp_path_factory, "cervix-run", build)


TRAIN_STEPS = 120  # fixed, so the result does not depend on how loaded the machine is


@pytest.fixture(scope="session")
def trained_lung(tmp_path_factory, shared_data):
    """(weights, held-out files per class): a tiny CLIP trained on the first TRAIN_PER_CLASS patches of
    each class; the held-out patches were never seen in training. Trained once per session."""
    lung = plugins.get("dataset", "lc25000-lung")
    base = shared_data / lung.folder
    files = {c: sorted((base / c).iterdir()) for c in lung.classes}

    def train(folder):
        captions = [p[0] for p in lung.prompts().prompts("single", lung.classes).values()]
        train_tiny_clip(folder / "weights", [files[c][:TRAIN_PER_CLASS] for c in lung.classes], captions,
                        steps=TRAIN_STEPS)
        return folder / "weights"

    return once_per_session(tmp_path_factory, "trained-lung", train), \
        {c: files[c][TRAIN_PER_CLASS:] for c in lung.classes}
