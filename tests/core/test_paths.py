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
