"""PanNuke cervix: labels from the neoplastic channel, from its official layout."""
import numpy as np
from support.layouts import PANNUKE_NEOPLASTIC, PANNUKE_TYPES, get, one_line_error, same_times, write_pannuke


def test_pannuke_labels_come_from_the_neoplastic_channel(tmp_path):
    root = write_pannuke(tmp_path / "a")
    m = get("pannuke").manifest(root)
    assert len(m) == 9 and m.paths[0] == "Fold 1/images/fold1/images.npy#0"
    expected = {f"Fold {k}/images/fold{k}/images.npy#{i}": int(i in PANNUKE_NEOPLASTIC[k])
                for k, types in PANNUKE_TYPES.items() for i in range(len(types))}
    assert dict(zip(m.paths, m.labels.tolist())) == expected
    assert dict(zip(m.paths, m.splits)) == {p: "fold" + p[5] for p in expected}
    assert [x["tissue"] for x in m.meta][:4] == PANNUKE_TYPES[1]
    cervix = get("pannuke-cervix").manifest(root)
    assert len(cervix) == 5 and {x["tissue"] for x in cervix.meta} == {"Cervix"}
    assert cervix.labels.tolist() == [1, 0, 0, 1, 1] and cervix.splits == ["fold1", "fold1", "fold2", "fold2", "fold3"]
    # a row of the float64 array comes back as the same uint8 RGB image
    img = get("pannuke").open_image(m.root, "Fold 2/images/fold2/images.npy#1")
    raw = np.load(root / "PanNuke/Fold 2/images/fold2/images.npy")[1]
    assert img.mode == "RGB" and img.size == (64, 64) and np.array_equal(np.asarray(img), raw.astype(np.uint8))
    # stable across copies; a neoplastic nucleus drawn into a benign patch relabels it and changes the hash
    assert same_times(get("pannuke-cervix"), cervix, write_pannuke(tmp_path / "b")).hash == cervix.hash
    masks_file = root / "PanNuke/Fold 2/masks/fold2/masks.npy"
    masks = np.load(masks_file)
    masks[0, 30:33, 30:33, 0] = 9
    np.save(masks_file, masks)
    again = get("pannuke-cervix").manifest(root)
    assert again.labels.tolist() == [1, 0, 1, 1, 1] and again.hash != cervix.hash


def test_pannuke_wrong_layout(tmp_path):
    flat = tmp_path / "flat" / "PanNuke"
    flat.mkdir(parents=True)
    (flat / "images.npy").write_bytes(b"")
    msg = one_line_error(get("pannuke"), tmp_path / "flat")
    assert f"expected {flat}/Fold 1/images/fold1/images.npy" in msg and "found images.npy" in msg
    root = write_pannuke(tmp_path / "nomasks")
    (root / "PanNuke/Fold 3/masks/fold3/masks.npy").unlink()
    msg = one_line_error(get("pannuke"), root)
    assert f"{root}/PanNuke/Fold 3/masks/fold3/masks.npy not found" in msg
