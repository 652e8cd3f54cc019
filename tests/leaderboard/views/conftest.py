"""The database the view tests read, written by real `pathboard run` commands once per session, and a
`pathboard leaderboard` serving it (one per test module)."""
import pytest
from support.browser import serve
from support.helpers import once_per_session, pathboard
from support.layouts import fixtures


@pytest.fixture(scope="session")
def real_db(tmp_path_factory, tiny_hub, shared_data):
    """Three runs: every default task on CRC-VAL-HE-7K, CAMELYON16 (two slides) and a folder set of LC25000-lung
    (few-shot with prototype and linear probe), then Quilt-1M's protocol pack on those LC25000 lung patches in LC25000's own layout, then
    robustness on CRC-VAL-HE-7K."""
    def build(root):
        data = root / "data"
        lung = fixtures(data, shared_data)
        (data / "CRC-VAL-HE-7K").symlink_to(shared_data / "CRC-VAL-HE-7K")
        (data / "lung_colon_image_set").mkdir()  # LC25000's layout around the 32 patches a class of the folder set
        (data / "lung_colon_image_set" / "lung_image_sets").symlink_to(lung)
        db = root / "pb.duckdb"
        env = {"PATHBOARD_CACHE": str(root / "cache")}
        common = ["--models", "quiltnet-b32,plip", "--data-root", data, "--db", db, "--workers", "0"]
        first = pathboard("run", *common, "--datasets", f"crc-val-he-7k,camelyon16,folder:{lung}",
                          "--fewshot-methods", "prototype,linear-probe", env=env)
        assert first.returncode == 0, first.stderr[-3000:]
        packed = pathboard("run", *common, "--protocol", "quilt", "--datasets", "lc25000-lung", env=env)
        assert packed.returncode == 0, packed.stderr[-3000:]
        second = pathboard("run", *common, "--datasets", "crc-val-he-7k", "--tasks", "robustness",
                           "--prompt-modes", "single", env=env)
        assert second.returncode == 0, second.stderr[-3000:]
        return db, f"folder:{lung}"

    return once_per_session(tmp_path_factory, "views-db", build)


@pytest.fixture(scope="module")
def url(real_db):
    yield from serve(real_db[0])
