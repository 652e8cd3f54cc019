"""Slide-level general datasets (CAMELYON16, DHMC LUAD, EBRAINS) and the generic folder/CSV datasets,
each read from small fixtures written in the official layout."""
import csv
import zipfile
from pathlib import Path

import numpy as np
import openslide
import pytest
import tifffile

from pathboard.core.engine import plugins
from pathboard.core.engine.selection import dataset_from_spec
from pathboard.core.errors import DatasetNotFoundError
from pathboard.core.interfaces.dataset import Annotation
from pathboard.plugins.datasets import ebrains as ebrains_mod
from pathboard.plugins.datasets._ebrains_split import rare30_test_uuids
from pathboard.plugins.datasets.camelyon16 import parse_asap_xml


def pyramid_tif(path: Path, width=512, height=384, seed=0) -> np.ndarray:
    """A real 3-level tiled pyramidal TIFF (the generic-tiff layout of the CAMELYON slides)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    with tifffile.TiffWriter(path) as tw:
        for level in range(3):
            tw.write(img[:: 2**level, :: 2**level], tile=(128, 128), photometric="rgb", compression="zlib",
                     subfiletype=1 if level else 0, resolution=(40000, 40000), resolutionunit="CENTIMETER")
    return img


def placeholder(path: Path, content: bytes = b"slide") -> None:
    """A stand-in slide where only the layout matters."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def asap_xml(annotations) -> str:
    """ASAP annotation XML, as CAMELYON16's lesion_annotations hold: (name, group, [(order, x, y), ...])."""
    parts = ['<?xml version="1.0"?>', "<ASAP_Annotations>", "\t<Annotations>"]
    for name, group, points in annotations:
        parts.append(f'\t\t<Annotation Name="{name}" Type="Polygon" PartOfGroup="{group}" Color="#F4FA58">')
        parts.append("\t\t\t<Coordinates>")
        parts += [f'\t\t\t\t<Coordinate Order="{o}" X="{x}" Y="{y}" />' for o, x, y in points]
        parts += ["\t\t\t</Coordinates>", "\t\t</Annotation>"]
    parts += ["\t</Annotations>", "\t<AnnotationGroups>"]
    parts += [f'\t\t<Group Name="{g}" PartOfGroup="None" Color="#64FE2E"><Attributes /></Group>' for g in ("_0", "_1", "_2")]
    parts += ["\t</AnnotationGroups>", "</ASAP_Annotations>"]
    return "\n".join(parts)


def one_line(exc) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


# --------------------------------------------------------------------------------------------- CAMELYON16

TUMOR_001 = [("Annotation 0", "_0", [(0, "61735.5", "100246.25"), (1, "61800", "100300.75"), (2, "61700.125", "100400")]),
             ("Annotation 1", "_1", [(2, "70000", "90000.5"), (0, "70100", "90000"), (1, "70100", "90100")]),
             ("Annotation 2", "_2", [(0, "61740", "100260"), (1, "61760", "100280"), (2, "61750", "100290")])]


@pytest.fixture()
def camelyon(tmp_path) -> Path:
    base = tmp_path / "data" / "CAMELYON16"
    pyramid_tif(base / "training/normal/normal_001.tif", seed=1)
    pyramid_tif(base / "training/normal/normal_002.tif", seed=2)
    pyramid_tif(base / "training/tumor/tumor_001.tif", seed=3)
    pyramid_tif(base / "testing/images/test_001.tif", seed=4)
    pyramid_tif(base / "testing/images/test_002.tif", seed=5)
    (base / "training/lesion_annotations").mkdir(parents=True)
    (base / "training/lesion_annotations/tumor_001.xml").write_text(asap_xml(TUMOR_001))
    (base / "testing/reference.csv").write_text("Test_001,Tumor,Macro,\nTest_002,Normal,None,\n")
    with zipfile.ZipFile(base / "testing/lesion_annotations.zip", "w") as zf:  # as shipped: zipped
        zf.writestr("test_001.xml", asap_xml([("Annotation 0", "Tumor", [(0, "10", "20"), (1, "30,5", "40"), (2, "50", "60")])]))
    (base / "training/normal/readme.txt").write_text("not a slide")
    return tmp_path / "data"


def test_camelyon16_labels_splits_slides_and_annotations(camelyon):
    ds = plugins.get("dataset", "camelyon16")
    assert ds.classes == ["normal", "tumor"] and ds.level == "wsi" and ds.eval_split == "test"
    assert ds.tasks == {"zeroshot-wsi", "fewshot-wsi", "segmentation", "prompt-sensitivity"} and ds.tags["group"] == "general" \
        and not ds.ordinal
    m = ds.manifest(camelyon)
    assert m.paths == ["testing/images/test_001.tif", "testing/images/test_002.tif", "training/normal/normal_001.tif",
                       "training/normal/normal_002.tif", "training/tumor/tumor_001.tif"]
    assert m.labels.tolist() == [1, 0, 0, 0, 1]
    assert m.splits == ["test", "test", "train", "train", "train"]
    assert m.meta[0] == {"metastasis": "Macro", "group": "test_001"} and m.meta[2] == {"group": "normal_001"}
    for path in m.paths:  # real pyramidal slides that openslide reads
        slide = openslide.OpenSlide(str(m.root / path))
        assert slide.level_count == 3 and slide.dimensions == (512, 384)
        slide.close()

    tumor = ds.annotations(m.root, "training/tumor/tumor_001.tif")
    assert tumor == [
        Annotation("tumor", ((61735.5, 100246.25), (61800.0, 100300.75), (61700.125, 100400.0))),
        Annotation("tumor", ((70100.0, 90000.0), (70100.0, 90100.0), (70000.0, 90000.5))),  # sorted by Order
        Annotation("exclusion", ((61740.0, 100260.0), (61760.0, 100280.0), (61750.0, 100290.0))),
    ]
    assert ds.annotations(m.root, "testing/images/test_001.tif") == [
        Annotation("tumor", ((10.0, 20.0), (30.5, 40.0), (50.0, 60.0)))]  # read from the zip; decimal comma
    assert ds.annotations(m.root, "training/normal/normal_001.tif") == []

    assert ds.manifest(camelyon).hash == m.hash
    (m.root / "testing/reference.csv").write_text("Test_001,Tumor,Macro,\nTest_002,Tumor,Micro,\n")
    changed = ds.manifest(camelyon)
    assert changed.labels.tolist() == [1, 1, 0, 0, 1] and changed.hash != m.hash


def test_camelyon16_wrong_layouts_say_what_is_expected_and_found(tmp_path):
    ds = plugins.get("dataset", "camelyon16")
    with pytest.raises(DatasetNotFoundError) as exc:
        ds.manifest(tmp_path)
    assert str(tmp_path / "CAMELYON16") in one_line(exc)
    placeholder(tmp_path / "CAMELYON16/images/normal_001.tif")  # the flat AWS mirror layout
    with pytest.raises(DatasetNotFoundError) as exc:
        ds.manifest(tmp_path)
    text = one_line(exc)
    assert "training/normal" in text and "found images" in text
    placeholder(tmp_path / "CAMELYON16/testing/images/test_001.tif")
    with pytest.raises(DatasetNotFoundError) as exc:
        ds.manifest(tmp_path)
    assert "testing/reference.csv not found" in one_line(exc)


def test_asap_parser_keeps_unknown_groups():
    xml = asap_xml([("a", "metastases", [(0, 1, 2)]), ("b", "Exclusion", [(0, 3, 4)]), ("c", "Custom", [(0, 5, 6)])])
    assert [a.label for a in parse_asap_xml(xml)] == ["tumor", "exclusion", "Custom"]


# ---------------------------------------------------------------------------------------------- DHMC LUAD

def write_csv(path: Path, header, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


DHMC_ROWS = [("DHMC_0001.tif", "solid"), ("DHMC_0002.tif", "lepidic"), ("DHMC_0003.tif", "Acinar"),
             ("DHMC_0004.tif", "micropapillary"), ("DHMC_0005.tif", "papillary"), ("DHMC_0006.tif", "acinar")]


@pytest.fixture()
def dhmc(tmp_path) -> Path:
    base = tmp_path / "DartmouthLungCancerHistologyDataset"
    write_csv(base / "MetaData_Release_1.0.csv", ["File Name", "Class"], DHMC_ROWS)
    for name, _ in DHMC_ROWS[:4]:
        placeholder(base / name)
    placeholder(base / "more" / "DHMC_0005.tif")  # slides in a sub-folder are found too
    return tmp_path  # DHMC_0006 is listed but absent: a partial copy


def test_dhmc_luad_labels_and_hash(dhmc):
    ds = plugins.get("dataset", "dhmc-luad")
    assert ds.classes == ["lepidic", "acinar", "papillary", "micropapillary", "solid"] and not ds.ordinal
    assert ds.headline_metric == "cohen_kappa" and ds.expected_files == 143 and ds.tags["organ"] == "lung"
    m = ds.manifest(dhmc)
    assert m.paths == ["DHMC_0001.tif", "DHMC_0002.tif", "DHMC_0003.tif", "DHMC_0004.tif", "more/DHMC_0005.tif"]
    assert [ds.classes[i] for i in m.labels] == ["solid", "lepidic", "acinar", "micropapillary", "papillary"]
    assert set(m.splits) == {"test"}
    assert ds.manifest(dhmc).hash == m.hash
    rows = [("DHMC_0001.tif", "acinar")] + DHMC_ROWS[1:]
    write_csv(dhmc / "DartmouthLungCancerHistologyDataset/MetaData_Release_1.0.csv", ["File Name", "Class"], rows)
    assert ds.manifest(dhmc).hash != m.hash


def test_dhmc_luad_wrong_layouts(tmp_path):
    ds = plugins.get("dataset", "dhmc-luad")
    base = tmp_path / "DartmouthLungCancerHistologyDataset"
    placeholder(base / "DHMC_0001.tif")
    with pytest.raises(DatasetNotFoundError) as exc:
        ds.manifest(tmp_path)
    text = one_line(exc)
    assert "MetaData_Release_1.0.csv not found" in text and "found DHMC_0001.tif" in text
    write_csv(base / "MetaData_Release_1.0.csv", ["filename", "label"], [("DHMC_0001.tif", "solid")])
    with pytest.raises(DatasetNotFoundError) as exc:
        ds.manifest(tmp_path)
    assert "has columns filename, label; expected 'File Name' and 'Class'" in one_line(exc)
    write_csv(base / "MetaData_Release_1.0.csv", ["File Name", "Class"], [("DHMC_0001.tif", "cribriform")])
    with pytest.raises(DatasetNotFoundError) as exc:
        ds.manifest(tmp_path)
    assert "'cribriform'" in one_line(exc)
    write_csv(base / "MetaData_Release_1.0.csv", ["File Name", "Class"], [("DHMC_0099.tif", "solid")])
    with pytest.raises(DatasetNotFoundError) as exc:
        ds.manifest(tmp_path)
    assert "none of the 1 slides listed" in one_line(exc)


# ------------------------------------------------------------------------------------------------ EBRAINS

TEST_GBM = "a196f370-357f-11eb-8f4c-001a7dda7111"  # in the published rare-30 test split
OTHER_GBM = "a1000001-357f-11eb-8000-001a7dda7111"
OLIGO = "a1000002-357f-11eb-8000-001a7dda7111"
ASTROBLASTOMA = "a1000003-357f-11eb-8000-001a7dda7111"
CONTROL = "a1000004-357f-11eb-8000-001a7dda7111"
MISSING = "a1000005-357f-11eb-8000-001a7dda7111"
EBRAINS_HEADER = ["uuid", "pat_id", "diagnosis", "diagnosis_group", "grade", "control"]
EBRAINS_ROWS = [
    (TEST_GBM, "patient_1862", "Glioblastoma, IDH-wildtype", "Adult-type diffuse gliomas", "IV", "0"),
    (OTHER_GBM, "patient_2", "Glioblastoma, IDH-wildtype", "Adult-type diffuse gliomas", "IV", "0"),
    (OLIGO, "patient_3", "Oligodendroglioma, IDH-mutant and 1p/19q codeleted", "Adult-type diffuse gliomas", "II", "0"),
    (ASTROBLASTOMA, "patient_4", "Astroblastoma", "", "", "0"),
    (CONTROL, "patient_5", "", "", "", "1"),
    (MISSING, "patient_6", "Pilocytic astrocytoma", "", "I", "0"),
]


@pytest.fixture()
def atlas(tmp_path) -> Path:
    version = tmp_path / "DigitalBrainTumourAtlas" / "v1.0"
    write_csv(version / "annotation.csv", EBRAINS_HEADER, EBRAINS_ROWS)
    placeholder(version / "Glioblastoma, IDH-wildtype" / f"{TEST_GBM}.ndpi", b"1")
    placeholder(version / "Glioblastoma, IDH-wildtype" / f"{OTHER_GBM}.ndpi", b"22")
    placeholder(version / "Oligodendroglioma, IDH-mutant and 1p-19q codeleted" / f"{OLIGO}.ndpi", b"333")
    placeholder(version / "Astroblastoma" / f"{ASTROBLASTOMA}.ndpi", b"4444")
    placeholder(version / "Control" / f"{CONTROL}.ndpi", b"55555")
    return tmp_path


def test_ebrains_all_diagnoses(atlas):
    ds = plugins.get("dataset", "ebrains")
    assert len(ds.classes) == 126 == len(set(ds.classes)) and ds.tags["organ"] == "brain" and ds.eval_split is None
    m = ds.manifest(atlas)
    by_uuid = {Path(p).stem: (p, label, meta) for p, label, meta in zip(m.paths, m.labels, m.meta)}
    assert set(by_uuid) == {TEST_GBM, OTHER_GBM, OLIGO, ASTROBLASTOMA, CONTROL}  # MISSING is not on disk
    path, label, meta = by_uuid[OLIGO]
    assert path == f"v1.0/Oligodendroglioma, IDH-mutant and 1p-19q codeleted/{OLIGO}.ndpi"
    assert ds.classes[label] == "Oligodendroglioma, IDH-mutant and 1p/19q codeleted"
    assert meta["pat_id"] == "patient_3" and meta["grade"] == "II"
    assert ds.classes[by_uuid[ASTROBLASTOMA][1]] == "Astroblastoma"
    assert by_uuid[CONTROL][1] == -1 and by_uuid[CONTROL][2]["control"] == "1"
    assert set(m.splits) == {None}

    assert ds.manifest(atlas).hash == m.hash
    rows = [r if r[0] != OTHER_GBM else (OTHER_GBM, "patient_2", "Gliosarcoma", "", "IV", "0") for r in EBRAINS_ROWS]
    write_csv(atlas / "DigitalBrainTumourAtlas/v1.0/annotation.csv", EBRAINS_HEADER, rows)
    assert ds.manifest(atlas).hash != m.hash


def test_ebrains_rare30_classes_and_split(atlas):
    ds = plugins.get("dataset", "ebrains-rare30")
    assert len(ds.classes) == 30 and set(ds.classes) <= set(ebrains_mod.CLASSES)
    assert {"Glioblastoma, IDH-wildtype", "Haemangiopericytoma", "Medulloblastoma, non-WNT/non-SHH"} <= set(ds.classes)
    assert ds.splits == ("trainval", "test") and ds.eval_split == "test" and ds.expected_files == 2319
    uuids = rare30_test_uuids()
    assert len(uuids) == 573 and TEST_GBM in uuids and OTHER_GBM not in uuids
    m = ds.manifest(atlas)  # the astroblastoma and the control slide are not in the 30 classes
    got = {Path(p).stem: (ds.classes[label], split) for p, label, split in zip(m.paths, m.labels, m.splits)}
    assert got == {TEST_GBM: ("Glioblastoma, IDH-wildtype", "test"),
                   OTHER_GBM: ("Glioblastoma, IDH-wildtype", "trainval"),
                   OLIGO: ("Oligodendroglioma, IDH-mutant and 1p/19q codeleted", "trainval")}


def test_ebrains_wrong_layouts(tmp_path):
    ds = plugins.get("dataset", "ebrains")
    base = tmp_path / "DigitalBrainTumourAtlas"
    placeholder(base / "Glioblastoma, IDH-wildtype" / f"{TEST_GBM}.ndpi")
    with pytest.raises(DatasetNotFoundError) as exc:
        ds.manifest(tmp_path)
    text = one_line(exc)
    assert f"{base / 'annotation.csv'} not found" in text and "found Glioblastoma, IDH-wildtype" in text
    write_csv(base / "annotation.csv", ["uuid", "diagnosis"], [(TEST_GBM, "Glioblastoma multiforme, NOS")])
    with pytest.raises(DatasetNotFoundError) as exc:
        ds.manifest(tmp_path)
    assert "'Glioblastoma multiforme, NOS', not one of the atlas's 126 diagnoses" in one_line(exc)
    write_csv(base / "annotation.csv", ["slide", "label"], [(TEST_GBM, "Glioblastoma, IDH-wildtype")])
    with pytest.raises(DatasetNotFoundError) as exc:
        ds.manifest(tmp_path)
    assert "expected uuid and diagnosis" in one_line(exc)
    write_csv(base / "annotation.csv", ["uuid", "diagnosis"], [(OLIGO, "Glioblastoma, IDH-wildtype")])
    with pytest.raises(DatasetNotFoundError) as exc:
        ds.manifest(tmp_path)
    assert "none of the 1 slides listed" in one_line(exc)


@pytest.mark.parametrize("dataset_id", ["camelyon16", "dhmc-luad", "ebrains", "ebrains-rare30"])
def test_registered_slide_datasets_declare_access_and_prompts(dataset_id):
    ds = plugins.get("dataset", dataset_id)
    assert ds.level == "wsi" and "zeroshot-wsi" in ds.tasks and ds.tags["stain"] == "H&E"
    assert ds.access and not ds.downloads and ds.url.startswith("http") and ds.expected_files
    prompts = ds.prompts()
    single = prompts.prompts("single", ds.classes)
    assert list(single) == ds.classes and all(len(v) == 1 for v in single.values())
    assert len(prompts.templates) == 22 and prompts.source


# ------------------------------------------------------------------------------------------------ generic

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
    assert ds.classes == ["normal", "tumor"] and ds.level == "wsi" and ds.tasks == {"zeroshot-wsi", "fewshot-wsi", "prompt-sensitivity"}
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


def test_specs_reject_bad_input_in_one_line(tmp_path):
    assert dataset_from_spec("crc-val-he-7k") is None and dataset_from_spec("general") is None
    with pytest.raises(DatasetNotFoundError) as exc:
        dataset_from_spec(f"folder:{tmp_path / 'nope'}")
    assert "is not a directory" in one_line(exc)
    placeholder(tmp_path / "flat" / "a.png")
    with pytest.raises(DatasetNotFoundError) as exc:
        dataset_from_spec(f"folder:{tmp_path / 'flat'}")
    assert "expected one sub-folder per class" in one_line(exc) and "found a.png" in str(exc.value)
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError) as exc:
        dataset_from_spec(f"folder:{tmp_path / 'empty'}").manifest(None)
    assert "no items" in one_line(exc)
    write_csv(tmp_path / "bad.csv", ["path", "class"], [("a.svs", "x")])
    with pytest.raises(DatasetNotFoundError) as exc:
        dataset_from_spec(f"slides-csv:{tmp_path / 'bad.csv'}")
    assert "expected the header slide_path,label[,split]; found path,class" in one_line(exc)
    write_csv(tmp_path / "missing.csv", ["slide_path", "label"], [("gone.svs", "x")])
    with pytest.raises(DatasetNotFoundError) as exc:
        dataset_from_spec(f"slides-csv:{tmp_path / 'missing.csv'}").manifest(None)
    assert f"e.g. {tmp_path / 'gone.svs'}" in one_line(exc)
    with pytest.raises(DatasetNotFoundError) as exc:
        dataset_from_spec("slides-csv:")
    assert "give a path" in one_line(exc)
