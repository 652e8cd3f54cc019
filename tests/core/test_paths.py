"""Where pathboard writes for the user: names safe on every filesystem."""
import re

from pathboard.core.paths import MAX_NAME, safe_name


def test_safe_names_keep_plain_ids_and_never_collide():
    assert safe_name("quiltnet-b32") == "quiltnet-b32" and safe_name("crc-val-he-7k") == "crc-val-he-7k"
    odd = ["slides-csv:/tmp/x/a.csv", "folder:/data/my set", "TCGA-XX/slide:1.svs", "con/aux*?<>|\"", "a" * 300,
           "folder:/data/my_set", "folder:/data/my set/"]
    names = [safe_name(t) for t in odd]
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", n) and len(n) <= MAX_NAME for n in names), names
    assert len(set(names)) == len(names)  # ids that differ never share a folder
    assert safe_name("slides-csv:/tmp/x/a.csv").startswith("slides-csv_tmp_x_a.csv-")


def test_a_cached_file_is_written_whole_or_not_at_all(tmp_path):
    import os

    from pathboard.core.paths import write_cached

    target = tmp_path / "cache" / "sub" / "labels.json"
    assert write_cached(target, lambda fh: fh.write(b"[1, 2]"))
    assert target.read_bytes() == b"[1, 2]" and [p.name for p in target.parent.iterdir()] == ["labels.json"]

    def fails_half_way(fh):
        fh.write(b"[3,")
        raise OSError("disk full")

    assert not write_cached(target, fails_half_way)  # the old file stays, and no temporary file is left
    assert target.read_bytes() == b"[1, 2]" and [p.name for p in target.parent.iterdir()] == ["labels.json"]
    locked = tmp_path / "read-only"
    locked.mkdir()
    os.chmod(locked, 0o500)
    try:
        if not os.access(locked, os.W_OK):  # root writes anywhere: nothing to check there
            assert not write_cached(locked / "x.npy", lambda fh: fh.write(b"x"))
            assert list(locked.iterdir()) == []
    finally:
        os.chmod(locked, 0o700)


def test_threads_limit_what_the_run_groups_on(tmp_path, monkeypatch):
    import numpy as np
    import pytest
    from PIL import Image

    from pathboard.core import paths
    from pathboard.core.engine.plan import RunConfig, plan
    from pathboard.core.errors import PathboardError
    from pathboard.core.science import grouping

    monkeypatch.setattr(paths, "_cpu_limit", None)  # restored after the test
    every = paths.usable_cpus()
    with pytest.raises(PathboardError):  # the limit holds from the start of planning, before anything can fail
        plan(RunConfig(models="no-such-model", threads=1, db=str(tmp_path / "pb.duckdb")))
    assert paths.usable_cpus() == 1
    pools = []

    class Pool(grouping.ThreadPoolExecutor):
        def __init__(self, workers):
            pools.append(workers)
            super().__init__(workers)

    monkeypatch.setattr(grouping, "ThreadPoolExecutor", Pool)
    monkeypatch.setenv("PATHBOARD_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    grouping.near_duplicate_groups(tmp_path, [f"{i}.png" for i in range(3)])
    assert pools and set(pools) == {1}
    paths.limit_cpus(None)
    assert paths.usable_cpus() == every
