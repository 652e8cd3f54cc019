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
