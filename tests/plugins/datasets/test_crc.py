"""CRC-VAL-HE-7K on the real sample in its official layout."""
from support.helpers import mirror

from pathboard.core.engine import plugins


def test_crc_sample_manifest(shared_data, tmp_path):
    crc = plugins.get("dataset", "crc-val-he-7k")
    m = crc.manifest(shared_data)
    assert len(m) == 32 and m.paths[0] == "ADI/" + sorted((shared_data / "CRC-VAL-HE-7K/ADI").iterdir())[0].name
    # BACK is absent from the sample: labels index the full 9-class list and skip index 1
    assert sorted(set(m.labels.tolist())) == [0, 2, 3, 4, 5, 6, 7, 8]
    assert crc.classes[m.labels[-1]] == "TUM"
    root = tmp_path / "d"
    mirror(shared_data / "CRC-VAL-HE-7K", root / "CRC-VAL-HE-7K")
    assert crc.manifest(root).hash == m.hash
    (root / "CRC-VAL-HE-7K" / "ADI" / "new.png").write_bytes(b"x")
    assert crc.manifest(root).hash != m.hash
    (root / "CRC-VAL-HE-7K" / "ADI" / "notes.txt").write_text("ignored")
    assert len(crc.manifest(root)) == 33
