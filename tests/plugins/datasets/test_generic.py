"""Private data without a plugin: ``folder:PATH`` and ``slides-csv:FILE`` datasets."""
import numpy as np
import openslide
from support.layouts import placeholder, pyramid_tif, write_csv

from pathboard.core.engine.selection import dataset_from_spec
from pathboard.testing import applicable_tasks


def test_folder_spec_on_a_fixture(tmp_path):
    root = tmp_path / "my data"
    placeholder(root / "tumor_epithelium" / "a.png")
    placeholder(root / "tumor_epithelium" / "case 7" / "b.JPG")  # nested, upper-case extension
    placeholder(root / "stroma" / "c.tif")
    placeholder(root / "stroma" / ".hidden.png")
    placeholder(root / "stroma" / "notes.txt")
    placeholder(root / ".cache" / "d.png")
    placeholder(root / "stroma" / ".thumbs" / "e.png")
    ds = dataset_from_spec(f"folder:{root}")
    assert ds.id == f"folder:{root.resolve()}" and ds.classes == ["stroma", "tumor_epithelium"] and ds.level == "patch"
    m = ds.manifest(None)  # the data root plays no part
    assert m.paths == ["stroma/c.tif", "tumor_epithelium/a.png", "tumor_epithelium/case 7/b.JPG"]
    assert m.labels.tolist() == [0, 1, 1] and m.splits == [None, None, None]
    p = ds.prompts()
    assert p.prompts("single", ds.classes) == {"stroma": ["stroma."], "tumor_epithelium": ["tumor_epithelium."]}
    assert "an H&E image of tumor epithelium." in p.prompts("ensemble", ds.classes)["tumor_epithelium"]

    assert dataset_from_spec(f"folder:{root}").manifest(None).hash == m.hash
    (root / "stroma" / "c.tif").rename(root / "tumor_epithelium" / "c.tif")  # a changed label
    assert dataset_from_spec(f"folder:{root}").manifest(None).hash != m.hash

    (root / "prompts.json").write_text('{"templates": "@conch-templates.json", "classes": '
                                       '{"stroma": ["tumor stroma"], "tumor_epithelium": ["carcinoma"]}}')
    custom = dataset_from_spec(f"folder:{root}").prompts()  # the templates resolve to pathboard's own file
    assert custom.prompts("single", ds.classes)["tumor_epithelium"] == ["carcinoma."] and len(custom.templates) == 22


def test_folder_spec_on_real_crc_sample(shared_data):
    ds = dataset_from_spec(f"folder:{shared_data / 'CRC-VAL-HE-7K'}")
    assert ds.classes == ["ADI", "DEB", "LYM", "MUC", "MUS", "NORM", "STR", "TUM"]
    m = ds.manifest(None)
    assert len(m) == 32 and np.bincount(m.labels).tolist() == [4] * 8
    assert all(p.startswith(ds.classes[label] + "/") for p, label in zip(m.paths, m.labels))
    img = ds.open_image(m.root, m.paths[0])
    assert img.mode == "RGB" and img.size == (224, 224)


def test_slides_csv_spec_with_relative_paths(tmp_path):
    project = tmp_path / "project"
    pyramid_tif(project / "slides" / "s1.tif", seed=7)
    placeholder(project / "slides" / "s2.svs")
    placeholder(tmp_path / "elsewhere" / "s3.ndpi")
    placeholder(tmp_path / "abs" / "s4.mrxs")
    rows = [("slides/s1.tif", "tumor", "test"), ("slides/s2.svs", "normal", "train"),
            ("../elsewhere/s3.ndpi", "normal", "test"), (str(tmp_path / "abs" / "s4.mrxs"), "", "test")]
    write_csv(project / "cohort.csv", ["slide_path", "label", "split"], rows)
    ds = dataset_from_spec(f"slides-csv:{project / 'cohort.csv'}")
    assert ds.classes == ["normal", "tumor"] and ds.level == "wsi" and applicable_tasks(ds) == {
        "zeroshot-wsi", "fewshot-wsi", "prompt-sensitivity", "slide-retrieval"}
    assert ds.splits == ("test", "train") and ds.eval_split == "test"
    m = ds.manifest(None)
    got = {p: (int(label), split) for p, label, split in zip(m.paths, m.labels, m.splits)}
    assert got == {"slides/s1.tif": (1, "test"), "slides/s2.svs": (0, "train"), "../elsewhere/s3.ndpi": (0, "test"),
                   str(tmp_path / "abs" / "s4.mrxs"): (-1, "test")}
    slide = openslide.OpenSlide(str(m.root / "slides/s1.tif"))
    assert slide.level_count == 3
    slide.close()
    assert dataset_from_spec(f"slides-csv:{project / 'cohort.csv'}").manifest(None).hash == m.hash
    write_csv(project / "cohort.csv", ["slide_path", "label", "split"], [("slides/s1.tif", "normal", "test")] + rows[1:])
    assert dataset_from_spec(f"slides-csv:{project / 'cohort.csv'}").manifest(None).hash != m.hash
    assert ds.prompts().prompts("single", ds.classes) == {"normal": ["normal."], "tumor": ["tumor."]}
