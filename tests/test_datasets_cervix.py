"""Issue 4 loaders (cervix group, TCGA slides, PanNuke), each on small files written in its official layout."""
import csv
import io
import os
import tarfile
import uuid

import duckdb
import numpy as np
import openslide
import pytest
import tifffile
from helpers import pathboard
from PIL import Image

from pathboard.core.engine import plugins
from pathboard.core.errors import DatasetNotFoundError, PathboardError


def same_times(dataset, manifest, other_root):
    """``dataset``'s manifest of a copy at ``other_root`` whose item files are given the modification
    times of ``manifest``'s (manifests hash size and mtime: a plain copy is, rightly, new data)."""
    copy = dataset.manifest(other_root)
    for path in copy.paths:
        file = path.split("#", 1)[0]
        st = (manifest.root / file).stat()
        os.utime(copy.root / file, ns=(st.st_atime_ns, st.st_mtime_ns))
    return dataset.manifest(other_root)

def get(id):
    return plugins.get("dataset", id)


def png(path, seed, size=100):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def one_line_error(dataset, root) -> str:
    with pytest.raises(DatasetNotFoundError) as exc:
        dataset.manifest(root)
    assert "\n" not in str(exc.value)
    return str(exc.value)


# ---- fixtures in the official layouts ---------------------------------------------------------------

TILS = {"cesc": {"train": (2, 1), "val": (1, 1), "test": (3, 2)}, "luad": {"test": (2, 1)}}
#: the TCGA case of each split's patches: one patient per split, so group-disjoint few-shot keeps training patches
TILS_CASES = {"train": "TCGA-C5-A1BE", "val": "TCGA-EK-A2RE", "test": "TCGA-FU-A3HZ"}


def write_tils(root, studies=TILS):
    """TCGA-TILs/images-tcga-tils/<study>/<split>/<til-negative|til-positive>/*.png (+ pooled pancancer links)."""
    images = root / "TCGA-TILs" / "images-tcga-tils"
    seed = 0
    rows = []
    for study, splits in studies.items():
        for split, counts in splits.items():
            for cls, n in zip(("til-negative", "til-positive"), counts):
                for _ in range(n):
                    name = f"{TILS_CASES[split]}-01Z-00-DX1_{seed}.png"
                    png(images / study / split / cls / name, seed)
                    pooled = images / "pancancer" / split / cls / name
                    pooled.parent.mkdir(parents=True, exist_ok=True)
                    pooled.symlink_to(images / study / split / cls / name)
                    rows.append([split, study, TILS_CASES[split], cls, f"images-tcga-tils/{study}/{split}/{cls}/{name}"])
                    seed += 1
    with open(root / "TCGA-TILs" / "images-tcga-tils-metadata.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["partition", "study", "barcode", "label", "path"], *rows])
    return root


PANNUKE_TYPES = {1: ["Cervix", "Breast", "Cervix", "Colon"], 2: ["Cervix", "Cervix", "Skin"], 3: ["Lung", "Cervix"]}
# per fold, the patches whose Neoplastic channel (0) holds a nucleus
PANNUKE_NEOPLASTIC = {1: {0, 1}, 2: {1}, 3: {1}}


def write_pannuke(root, size=64):
    """PanNuke/Fold N/{images/foldN/{images,types}.npy, masks/foldN/masks.npy} (float64, as released)."""
    for k, types in PANNUKE_TYPES.items():
        fold = root / "PanNuke" / f"Fold {k}"
        (fold / "images" / f"fold{k}").mkdir(parents=True)
        (fold / "masks" / f"fold{k}").mkdir(parents=True)
        rng = np.random.default_rng(k)
        images = rng.integers(0, 256, (len(types), size, size, 3)).astype(np.float64)
        masks = np.zeros((len(types), size, size, 6), dtype=np.float64)
        masks[..., 5] = 1
        for i in range(len(types)):
            masks[i, 10:14, 10:14, 1] = 3  # every patch has an inflammatory nucleus
            if i in PANNUKE_NEOPLASTIC[k]:
                masks[i, 20:26, 20:26, 0] = 7
        np.save(fold / "images" / f"fold{k}" / "images.npy", images)
        np.save(fold / "images" / f"fold{k}" / "types.npy", np.array(types))
        np.save(fold / "masks" / f"fold{k}" / "masks.npy", masks)
    return root


def write_pyramid(path, seed, size=64):
    """A small tiled, pyramidal RGB TIFF (the TissueNet format) that OpenSlide opens."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    with tifffile.TiffWriter(path) as tif:
        tif.write(img, tile=(16, 16), photometric="rgb")
        tif.write(img[::2, ::2], tile=(16, 16), photometric="rgb", subfiletype=1)


TISSUENET = {"C01_B001_S01.tif": 0, "C01_B002_S01.tif": 1, "C02_B003_S01.tif": 2, "C02_B004_S01.tif": 3,
             "C03_B005_S01.tif": 0}
ANNOTATIONS = [("a1", "C02_B003_S01.tif", "POLYGON ((10 10, 40 10, 40 30, 10 10))", 2),
               ("a2", "C02_B003_S01.tif", "POLYGON ((1 1, 5 1, 5 5, 1 1), (2 2, 3 2, 3 3, 2 2))", 1),
               ("a3", "C02_B004_S01.tif", "MULTIPOLYGON (((0 0, 8 0, 8 8, 0 0)), ((20 20, 30 20, 30 30, 20 20)))", 3)]


def write_tissuenet(root, labels=TISSUENET, missing=("C03_B005_S01.tif",), suffix=""):
    """tissuenet/{train_labels,train_metadata,train_annotations}.csv + pyramidal TIFs under train/."""
    base = root / "tissuenet"
    base.mkdir(parents=True)
    with open(base / f"train_labels{suffix}.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["filename", "0", "1", "2", "3"])
        w.writerows([[f, *(int(c == k) for k in range(4))] for f, c in labels.items()])
    with open(base / f"train_metadata{suffix}.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["filename", "width", "height", "resolution", "magnification", "tif_cksum", "tif_size",
                    "us_wsi_url", "us_tif_url", "us_jpg_url"])
        w.writerows([[f, 64, 64, 0.25, 40, 1, 1, "s3://x/train/" + f, "s3://x/train/" + f, ""] for f in labels])
    with open(base / f"train_annotations{suffix}.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["annotation_id", "filename", "geometry", "annotation_class", "us_jpeg_url", "eu_jpeg_url",
                    "asia_jpeg_url"])
        w.writerows([[a, f, g, c, "", "", ""] for a, f, g, c in ANNOTATIONS])
    for i, f in enumerate(labels):
        if f not in missing:
            write_pyramid(base / "train" / f, i)
    return root


def gdc_slide(project_dir, barcode, real_svs, file_id=None):
    """<project>/<file_id>/<barcode>.<uuid>.svs as gdc-client writes it (+ its logs/ folder)."""
    file_id = file_id or str(uuid.uuid5(uuid.NAMESPACE_DNS, barcode))
    folder = project_dir / file_id
    (folder / "logs").mkdir(parents=True)
    (folder / "logs" / f"{file_id}.log").write_text("downloaded")
    name = f"{barcode}.{str(uuid.uuid5(uuid.NAMESPACE_URL, barcode)).upper()}.svs"
    (folder / name).symlink_to(real_svs)
    return file_id, name


def write_tcga(root, real_svs):
    tcga = root / "TCGA"
    for barcode in ["TCGA-C5-A1BE-01Z-00-DX1", "TCGA-C5-A1BE-01A-01-TS1", "TCGA-EK-A2RE-01Z-00-DX1"]:
        gdc_slide(tcga / "TCGA-CESC", barcode, real_svs)
    for barcode in ["TCGA-A0-0001-01Z-00-DX1", "TCGA-A0-0002-01Z-00-DX1"]:
        gdc_slide(tcga / "TCGA-KIRC", barcode, real_svs)
    gdc_slide(tcga / "TCGA-KIRC", "TCGA-A0-0003-01A-01-TS1", real_svs)  # frozen: not a diagnostic slide
    gdc_slide(tcga / "TCGA-KIRP", "TCGA-B0-0001-01Z-00-DX1", real_svs)
    ids = {b: gdc_slide(tcga / "TCGA-BRCA", b, real_svs)
           for b in ["TCGA-A1-0001-01Z-00-DX1", "TCGA-A1-0002-01Z-00-DX1", "TCGA-A1-0003-01Z-00-DX1",
                     "TCGA-A1-0004-01Z-00-DX1"]}
    (tcga / "gdc_manifest.2024-01-01.txt").write_text("id\tfilename\tmd5\tsize\tstate\n")
    write_clinical(root)
    return root, ids


#: the GDC clinical export's header in the pre-2024 portal and in the 2024 portal (API field paths)
CLINICAL_HEADERS = {
    "legacy": ["case_id", "case_submitter_id", "project_id", "morphology", "primary_diagnosis", "treatment_type"],
    "portal": ["cases.case_id", "cases.submitter_id", "project.project_id", "diagnoses.morphology",
               "diagnoses.primary_diagnosis", "treatments.treatment_type"],
}
# case, ICD-O-3 morphology, primary_diagnosis, treatment: one row per treatment, "'--" where GDC has no value
CESC_CLINICAL = [
    ("TCGA-C5-A1BE", "8070/3", "Squamous cell carcinoma, NOS", "Radiation Therapy, NOS"),
    ("TCGA-C5-A1BE", "8070/3", "Squamous cell carcinoma, NOS", "Pharmaceutical Therapy, NOS"),
    ("TCGA-EK-A2RE", "'--", "'--", "'--"),
    ("TCGA-EK-A2RE", "8140/3", "Adenocarcinoma, NOS", "Radiation Therapy, NOS"),
]
CLINICAL_ARCHIVES = {"cart": "clinical.cart.2024-06-01.tar.gz", "project": "clinical.project-tcga-cesc.2024-06-01.tar.gz"}


def write_clinical(root, rows=CESC_CLINICAL, header="legacy", form="tsv"):
    """TCGA/TCGA-CESC/clinical.tsv as the GDC portal exports it, or (form "cart"/"project") the portal's
    clinical.*.tar.gz holding it beside the other clinical tables; returns the file written."""
    lines = [CLINICAL_HEADERS[header]] + [[str(uuid.uuid5(uuid.NAMESPACE_DNS, case)), case, "TCGA-CESC", *values]
                                          for case, *values in rows]
    text = "".join("\t".join(line) + "\n" for line in lines)
    folder = root / "TCGA" / "TCGA-CESC"
    if form == "tsv":
        (folder / "clinical.tsv").write_text(text)
        return folder / "clinical.tsv"
    archive = folder / CLINICAL_ARCHIVES[form]
    tables = {"clinical.tsv": text, "exposure.tsv": "case_id\tcase_submitter_id\n", "follow_up.tsv": "case_id\n"}
    with tarfile.open(archive, "w:gz") as tar:
        for name, table in tables.items():
            data = table.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def write_reports(root, reports):
    """<data root>/TCGA-Reports/TCGA_Reports.csv as unzipped from the TCGA-Reports release (patient_filename,text)."""
    folder = root / "TCGA-Reports"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "TCGA_Reports.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["patient_filename", "text"],
                                  *([f"{case}.{uuid.uuid5(uuid.NAMESPACE_OID, case)}", text]
                                    for case, text in reports.items())])


def write_brca_labels(root, ids, ilc="ILC"):
    (_, full), (file_id, _) = ids["TCGA-A1-0001-01Z-00-DX1"], ids["TCGA-A1-0003-01Z-00-DX1"]
    rows = [["slide_id", "label"], [full[:-4], "IDC"], ["TCGA-A1-0002-01Z-00-DX1", ilc], [file_id, "IDC"]]
    with open(root / "TCGA" / "TCGA-BRCA" / "labels.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)  # TCGA-A1-0004 is not listed: unlabelled


GTEX_SITES = {"GTEX-1117F-0126": "Cervix - Ectocervix", "GTEX-1117F-0226": "Cervix - Endocervix",
              "GTEX-111CU-0326": "Cervix - Ectocervix", "GTEX-111CU-0426": "Uterus"}


def write_gtex(root, real_svs, table="portal"):
    base = root / "GTEx"
    base.mkdir(parents=True)
    for sample in GTEX_SITES:
        (base / f"{sample}.svs").symlink_to(real_svs)
    if table == "portal":
        with open(base / "GTEx Portal.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["Tissue Sample ID", "Tissue", "Subject ID", "Sex", "Age Bracket", "Hardy Scale",
                        "Pathology Categories", "Pathology Notes"])
            w.writerows([[s, t, "-".join(s.split("-")[:2]), "female", "50-59", "", "", ""]
                         for s, t in GTEX_SITES.items()])
    else:
        with open(base / "GTEx_Analysis_v8_Annotations_SampleAttributesDS.txt", "w", newline="") as fh:
            w = csv.writer(fh, delimiter="\t")
            w.writerow(["SAMPID", "SMATSSCR", "SMTS", "SMTSD"])
            w.writerows([[f"{s}-SM-{i}ABCD", "1", t.split(" - ")[0], t] for i, (s, t) in enumerate(GTEX_SITES.items())])
    return root


# ---- TCGA TIL patches --------------------------------------------------------------------------------

def test_tcga_tils_layout_labels_splits_and_hash(tmp_path):
    root = write_tils(tmp_path / "a")
    m = get("tcga-tils").manifest(root)
    assert len(m) == 13  # the pooled pancancer/ copies are not counted again
    assert not any("pancancer" in p for p in m.paths)
    assert {x["study"] for x in m.meta} == {"cesc", "luad"}
    cervix = get("tcga-tils-cervix").manifest(root)
    assert len(cervix) == 10 and {x["study"] for x in cervix.meta} == {"cesc"}
    assert get("tcga-tils-cervix").classes == ["til-negative", "til-positive"]
    by_split = {s: np.bincount(cervix.labels[[x == s for x in cervix.splits]], minlength=2).tolist()
                for s in ("train", "val", "test")}
    assert by_split == {"train": [2, 1], "val": [1, 1], "test": [3, 2]}
    i = cervix.paths.index(next(p for p in cervix.paths if "/test/til-positive/" in p))
    assert cervix.labels[i] == 1 and cervix.splits[i] == "test"
    assert get("tcga-tils-cervix").eval_split == "test"
    # the same files elsewhere hash the same; a patch moved to the other class does not
    assert same_times(get("tcga-tils-cervix"), cervix, write_tils(tmp_path / "b")).hash == cervix.hash
    src = root / "TCGA-TILs" / cervix.paths[0]
    src.rename(src.parent.parent / "til-positive" / src.name)
    assert get("tcga-tils-cervix").manifest(root).hash != cervix.hash


def test_tcga_tils_wrong_layouts_name_the_expected_path(tmp_path):
    nested = tmp_path / "nested"
    write_tils(nested / "TCGA-TILs")  # extracted one level too deep
    msg = one_line_error(get("tcga-tils"), nested)
    assert f"{nested}/TCGA-TILs/images-tcga-tils not found" in msg and "found TCGA-TILs" in msg
    no_cesc = write_tils(tmp_path / "luad", {"luad": {"test": (1, 1)}})
    msg = one_line_error(get("tcga-tils-cervix"), no_cesc)
    assert f"expected study folder {no_cesc}/TCGA-TILs/images-tcga-tils/cesc" in msg and "found luad" in msg


# ---- PanNuke -------------------------------------------------------------------------------------------

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


# ---- TissueNet -----------------------------------------------------------------------------------------

def test_tissuenet_labels_metadata_annotations(tmp_path):
    root = write_tissuenet(tmp_path / "a", suffix="_eRORy1H")  # DrivenData's suffixed CSV names
    ds = get("tissuenet")
    m = ds.manifest(root)
    assert ds.level == "wsi" and ds.ordinal and ds.classes == ["benign", "LSIL", "HSIL", "invasive"]
    # C03_B005_S01 is listed but not downloaded: a partial copy holds the slides present
    assert m.paths == ["train/C01_B001_S01.tif", "train/C01_B002_S01.tif", "train/C02_B003_S01.tif",
                       "train/C02_B004_S01.tif"]
    assert m.labels.tolist() == [0, 1, 2, 3] and set(m.splits) == {"train"}
    assert m.meta[0] == {"case": "C01", "width": "64", "height": "64", "resolution": "0.25", "magnification": "40",
                         "group": "C01"}
    anns = ds.annotations(m.root, "train/C02_B003_S01.tif")
    assert [a.label for a in anns] == ["HSIL", "LSIL"]
    assert anns[0].polygon == ((10.0, 10.0), (40.0, 10.0), (40.0, 30.0), (10.0, 10.0))
    assert anns[1].polygon[0] == (1.0, 1.0) and len(anns[1].polygon) == 4  # the hole is dropped
    assert [a.label for a in ds.annotations(m.root, "train/C02_B004_S01.tif")] == ["invasive", "invasive"]
    assert ds.annotations(m.root, "train/C01_B001_S01.tif") == []
    with openslide.OpenSlide(str(m.root / m.paths[0])) as slide:  # the fixture is a real pyramidal TIFF
        assert slide.level_count == 2 and slide.dimensions == (64, 64)
    # same files, unsuffixed CSV names, slides beside the CSVs: same hash; a relabelled slide: another
    other = write_tissuenet(tmp_path / "b")
    assert same_times(ds, m, other).hash == m.hash
    relabelled = write_tissuenet(tmp_path / "c", {**TISSUENET, "C01_B002_S01.tif": 2})
    assert ds.manifest(relabelled).hash != m.hash


def test_tissuenet_wrong_layouts(tmp_path):
    root = write_tissuenet(tmp_path / "a")
    (root / "tissuenet" / "train_labels.csv").unlink()
    msg = one_line_error(get("tissuenet"), root)
    assert f"{root}/tissuenet/train_labels.csv not found" in msg and "train_annotations.csv" in msg
    bad = write_tissuenet(tmp_path / "b")
    (bad / "tissuenet" / "train_labels.csv").write_text("filename,label\nC01_B001_S01.tif,0\n")
    msg = one_line_error(get("tissuenet"), bad)
    assert "lacks column(s) 0, 1, 2, 3" in msg


# ---- TCGA slides (GDC layout) --------------------------------------------------------------------------

def test_tcga_projects_label_the_slides(tmp_path, shared_data):
    root, _ = write_tcga(tmp_path / "a", shared_data / "slides" / "CMU-1-Small-Region.svs")
    rcc = get("tcga-rcc").manifest(root)
    assert len(rcc) == 3 and [rcc.meta[i]["project"] for i in range(3)] == ["TCGA-KIRC", "TCGA-KIRC", "TCGA-KIRP"]
    assert rcc.labels.tolist() == [0, 0, 1]  # CCRCC, CCRCC, PRCC; the frozen TS1 slide is not diagnostic
    assert all(p.count("/") == 2 and p.endswith(".svs") for p in rcc.paths)
    with openslide.OpenSlide(str(rcc.root / rcc.paths[0])) as slide:
        assert slide.dimensions == (2220, 2967)
    cesc = get("tcga-cesc").manifest(root)  # every slide, frozen ones too, labelled by case from clinical.tsv
    assert len(cesc) == 3 and slide_labels(cesc) == {"TCGA-C5-A1BE-01Z-00-DX1": 0, "TCGA-C5-A1BE-01A-01-TS1": 0,
                                                     "TCGA-EK-A2RE-01Z-00-DX1": 1}  # SCC, SCC, ADC
    assert get("tcga-cesc").facts == {"slides", "labels", "reports"} and "zeroshot-wsi" in get("tcga-cesc").tasks
    assert {x["case"] for x in cesc.meta} == {"TCGA-C5-A1BE", "TCGA-EK-A2RE"}
    msg = one_line_error(get("tcga-nsclc"), root)
    assert f"expected project folder(s) {root}/TCGA/TCGA-LUAD, {root}/TCGA/TCGA-LUSC" in msg and "TCGA-BRCA" in msg


def slide_labels(manifest) -> dict[str, int]:
    """Slide barcode -> label of a TCGA manifest."""
    return {path.rsplit("/", 1)[-1].split(".")[0]: int(label) for path, label in zip(manifest.paths, manifest.labels)}


# further TCGA-CESC cases: the primary_diagnosis text decides where the code is missing or maps to no class;
# the code wins over the text; rows that disagree, and a diagnosis of no class, leave the case unlabelled
CESC_MORE = [
    ("TCGA-FU-A3HZ", "'--", "Adenosquamous carcinoma", "Radiation Therapy, NOS"),
    ("TCGA-Q1-A5R1", "'--", "Endometrioid adenocarcinoma, NOS", "'--"),
    ("TCGA-C5-A7CK", "8482/3", "Mucinous adenocarcinoma, endocervical type", "Radiation Therapy, NOS"),
    ("TCGA-C5-A2LX", "8560/3", "Squamous cell carcinoma, NOS", "'--"),
    ("TCGA-EA-A3HT", "8070/3", "Squamous cell carcinoma, NOS", "Radiation Therapy, NOS"),
    ("TCGA-EA-A3HT", "8140/3", "Adenocarcinoma, NOS", "Pharmaceutical Therapy, NOS"),
    ("TCGA-ZJ-AAXD", "8041/3", "Small cell carcinoma, NOS", "'--"),
]
CESC_EXPECTED = {"TCGA-C5-A1BE-01Z-00-DX1": 0, "TCGA-C5-A1BE-01A-01-TS1": 0, "TCGA-EK-A2RE-01Z-00-DX1": 1,
                 "TCGA-FU-A3HZ-01Z-00-DX1": 2, "TCGA-Q1-A5R1-01Z-00-DX1": 1, "TCGA-C5-A7CK-01Z-00-DX1": 1,
                 "TCGA-C5-A2LX-01Z-00-DX1": 2, "TCGA-EA-A3HT-01Z-00-DX1": -1, "TCGA-ZJ-AAXD-01Z-00-DX1": -1,
                 "TCGA-VS-A9U5-01Z-00-DX1": -1}  # VS-A9U5: not in the export


def write_cesc(root, real_svs, header="legacy", form="tsv"):
    """write_tcga plus the slides of CESC_MORE's cases and of one case the export lacks, in that export form."""
    write_tcga(root, real_svs)
    (root / "TCGA" / "TCGA-CESC" / "clinical.tsv").unlink()
    for case in ("TCGA-FU-A3HZ", "TCGA-Q1-A5R1", "TCGA-C5-A7CK", "TCGA-C5-A2LX", "TCGA-EA-A3HT", "TCGA-ZJ-AAXD",
                 "TCGA-VS-A9U5"):
        gdc_slide(root / "TCGA" / "TCGA-CESC", f"{case}-01Z-00-DX1", real_svs)
    write_clinical(root, CESC_CLINICAL + CESC_MORE, header, form)
    return root


@pytest.mark.parametrize(("header", "form"), [("legacy", "tsv"), ("portal", "tsv"), ("portal", "cart"),
                                              ("legacy", "project")])
def test_tcga_cesc_labels_come_from_the_gdc_clinical_export(tmp_path, shared_data, capsys, header, form):
    svs = shared_data / "slides" / "CMU-1-Small-Region.svs"
    root = write_cesc(tmp_path / "a", svs, header, form)
    ds = get("tcga-cesc")
    assert ds.classes == ["SCC", "ADC", "ASC"] and ds.prompts().classes.keys() == {"SCC", "ADC", "ASC"}
    m = ds.manifest(root)
    assert slide_labels(m) == CESC_EXPECTED
    err = capsys.readouterr().err
    assert "tcga-cesc: 1 case(s) with conflicting diagnoses in the clinical export left unlabelled: TCGA-EA-A3HT" in err
    if form != "tsv":  # read inside the archive: nothing is extracted next to it
        assert not (root / "TCGA" / "TCGA-CESC" / "clinical.tsv").exists()
    # every header spelling and export form labels the same slides the same way
    assert m.hash == same_times(ds, m, write_cesc(tmp_path / "ref", svs)).hash


@pytest.mark.parametrize(("morphology", "diagnosis", "label"), [
    *((code, "", "SCC") for code in ("8070/3", "8071/3", "8072/3", "8083/3", "8052/3", "8051/3")),
    *((code, "", "ADC") for code in ("8140/3", "8380/3", "8480/3", "8482/3", "8310/3", "8441/3")),
    ("8560/3", "", "ASC"),
    ("", "Squamous cell carcinoma, NOS", "SCC"), ("", "Basaloid squamous cell carcinoma", "SCC"),
    ("", "Adenocarcinoma, NOS", "ADC"), ("", "Endometrioid adenocarcinoma, NOS", "ADC"),
    ("", "Adenocarcinoma with squamous metaplasia", "ADC"), ("", "Adenosquamous carcinoma", "ASC"),
    ("8041/3", "Small cell carcinoma, NOS", None), ("8077/2", "", None), ("", "", None),
])
def test_tcga_cesc_subtype_of_a_gdc_diagnosis(morphology, diagnosis, label):
    assert get("tcga-cesc").subtype(morphology, diagnosis) == label


def test_tcga_cesc_labels_csv_overrides_the_export(tmp_path, shared_data):
    root, _ = write_tcga(tmp_path / "a", shared_data / "slides" / "CMU-1-Small-Region.svs")
    folder = root / "TCGA" / "TCGA-CESC"
    with open(folder / "labels.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["slide_id", "label"], ["TCGA-EK-A2RE-01Z-00-DX1", "ASC"],
                                  ["TCGA-C5-A1BE-01A-01-TS1", ""]])  # an empty label: unlabelled
    assert slide_labels(get("tcga-cesc").manifest(root)) == {"TCGA-C5-A1BE-01Z-00-DX1": 0, "TCGA-C5-A1BE-01A-01-TS1": -1,
                                                             "TCGA-EK-A2RE-01Z-00-DX1": 2}
    (folder / "clinical.tsv").unlink()  # labels.csv alone: the slides it does not list stay unlabelled
    assert slide_labels(get("tcga-cesc").manifest(root)) == {"TCGA-C5-A1BE-01Z-00-DX1": -1, "TCGA-C5-A1BE-01A-01-TS1": -1,
                                                             "TCGA-EK-A2RE-01Z-00-DX1": 2}
    (folder / "labels.csv").unlink()
    msg = one_line_error(get("tcga-cesc"), root)
    assert f"{folder}/labels.csv or a GDC clinical export (clinical.tsv or clinical.*.tar.gz) not found" in msg
    (folder / "clinical.tsv").write_text("id\tfilename\n")  # not a clinical export (a gdc manifest)
    with pytest.raises(PathboardError, match="clinical.tsv: not a GDC clinical export: expected columns case_submitter_id"):
        get("tcga-cesc").manifest(root)


def test_tcga_reports_are_joined_by_case(tmp_path, shared_data):
    root, _ = write_tcga(tmp_path / "a", shared_data / "slides" / "CMU-1-Small-Region.svs")
    cesc, rcc = get("tcga-cesc"), get("tcga-rcc")
    m = cesc.manifest(root)
    assert cesc.reports(m) == {}  # no TCGA-Reports release under the data root
    scc = 'FINAL DIAGNOSIS:\nA. CERVIX, BIOPSY: INVASIVE SQUAMOUS CELL CARCINOMA, "KERATINIZING", GRADE 2.'
    write_reports(root, {"TCGA-C5-A1BE": scc, "TCGA-A0-0001": "Kidney: clear cell renal cell carcinoma.",
                         "TCGA-ZZ-0000": "a case without slides"})
    by_slide = {path.rsplit("/", 1)[-1].split(".")[0]: text for path, text in cesc.reports(m).items()}
    assert by_slide == {"TCGA-C5-A1BE-01Z-00-DX1": scc, "TCGA-C5-A1BE-01A-01-TS1": scc}  # EK-A2RE has no report
    assert set(cesc.reports(m)) <= set(m.paths)
    kidney = rcc.manifest(root)
    assert list(rcc.reports(kidney).values()) == ["Kidney: clear cell renal cell carcinoma."]
    assert all("reports" in get(id).facts for id in ("tcga-cesc", "tcga-brca", "tcga-rcc", "tcga-nsclc"))
    assert "TCGA-Reports/TCGA_Reports.csv" in cesc.access and "Projects -> TCGA-CESC -> Clinical" in cesc.access


def test_tcga_brca_labels_come_from_labels_csv(tmp_path, shared_data):
    root, ids = write_tcga(tmp_path / "a", shared_data / "slides" / "CMU-1-Small-Region.svs")
    msg = one_line_error(get("tcga-brca"), root)
    assert f"{root}/TCGA/TCGA-BRCA/labels.csv not found" in msg
    write_brca_labels(root, ids)
    m = get("tcga-brca").manifest(root)
    by_case = {x["case"]: int(label) for x, label in zip(m.meta, m.labels)}
    # keyed by the file name, the barcode and the GDC file UUID; an unlisted slide stays unlabelled
    assert by_case == {"TCGA-A1-0001": 0, "TCGA-A1-0002": 1, "TCGA-A1-0003": 0, "TCGA-A1-0004": -1}
    write_brca_labels(root, ids, ilc="IDC")
    assert get("tcga-brca").manifest(root).hash != m.hash
    write_brca_labels(root, ids, ilc="ILC")
    assert get("tcga-brca").manifest(root).hash == m.hash
    write_brca_labels(root, ids, ilc="lobular")
    with pytest.raises(PathboardError, match="label 'lobular' of TCGA-A1-0002-01Z-00-DX1 is not a class of tcga-brca"):
        get("tcga-brca").manifest(root)


# ---- GTEx ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("table", ["portal", "sample-attributes"])
def test_gtex_cervix_sites(tmp_path, shared_data, table):
    root = write_gtex(tmp_path / "a", shared_data / "slides" / "CMU-1-Small-Region.svs", table)
    m = get("gtex-cervix").manifest(root)
    assert m.paths == ["GTEX-1117F-0126.svs", "GTEX-1117F-0226.svs", "GTEX-111CU-0326.svs"]  # no uterus slide
    assert [x["site"] for x in m.meta] == ["Cervix - Ectocervix", "Cervix - Endocervix", "Cervix - Ectocervix"]
    assert m.labels.tolist() == [0, 1, 0] and get("gtex-cervix").classes == ["ectocervix", "endocervix"]
    assert [x["subject"] for x in m.meta] == ["GTEX-1117F", "GTEX-1117F", "GTEX-111CU"]  # the grouping of splits
    assert get("gtex-cervix").facts == {"slides", "labels"} and "zeroshot-wsi" in get("gtex-cervix").tasks
    assert get("gtex-cervix").prompts().classes.keys() == {"ectocervix", "endocervix"}
    (root / "GTEx" / "GTEX-111CU-0426.svs").rename(root / "GTEx" / "GTEX-111CU-0426.svs.bak")
    assert get("gtex-cervix").manifest(root).hash == m.hash
    (root / "GTEx" / "GTEX-1117F-0126.svs").unlink()
    assert get("gtex-cervix").manifest(root).hash != m.hash


def test_gtex_without_a_site_table(tmp_path, shared_data):
    root = write_gtex(tmp_path / "a", shared_data / "slides" / "CMU-1-Small-Region.svs")
    (root / "GTEx" / "GTEx Portal.csv").unlink()
    msg = one_line_error(get("gtex-cervix"), root)
    assert f"expected {root}/GTEx/GTEx Portal.csv" in msg and "GTEX-1117F-0126.svs" in msg


# ---- the cervix group end to end -----------------------------------------------------------------------

def test_cervix_group_runs_patch_sets_and_skips_the_others(tmp_path, tiny_hub):
    root = tmp_path / "data"
    write_tils(root)
    write_pannuke(root)
    write_tissuenet(root)
    db = tmp_path / "pb.duckdb"
    out = pathboard("run", "--models", "quiltnet-b32", "--datasets", "cervix", "--data-root", root, "--db", db,
                    "--prompt-modes", "single", "--workers", "0", "--tasks", "zeroshot")  # patch zero-shot only
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    skipped = [line for line in out.stderr.splitlines() if line.startswith("skipped")]
    assert any("tissuenet" in line and "slide-level" in line for line in skipped), skipped
    for absent in ("tcga-cesc", "gtex-cervix"):
        assert sum(line.startswith(f"skipped {absent}: ") and "not found" in line for line in skipped) == 1, skipped
    con = duckdb.connect(str(db), read_only=True)
    rows = dict(con.execute("SELECT dataset, n FROM leaderboard WHERE metric = 'weighted_f1'").fetchall())
    assert rows == {"tcga-tils-cervix": 5, "pannuke-cervix": 5}  # TILs score their test split


def test_cervix_group_scores_the_slide_sets_present(tmp_path, tiny_hub, shared_data):
    root = tmp_path / "data"
    write_tils(root)
    write_tcga(root, shared_data / "slides" / "CMU-1-Small-Region.svs")
    write_gtex(root, shared_data / "slides" / "CMU-1-Small-Region.svs")
    db = tmp_path / "pb.duckdb"
    out = pathboard("run", "--models", "quiltnet-b32", "--datasets", "cervix", "--data-root", root, "--db",
                    db, "--prompt-modes", "single", "--workers", "0")
    assert out.returncode == 0, out.stderr
    assert "tcga-cesc" in out.stderr and "gtex-cervix" in out.stderr
    con = duckdb.connect(str(db), read_only=True)
    rows = set(con.execute("SELECT dataset, n FROM leaderboard WHERE task = 'zeroshot-wsi' AND metric = 'weighted_f1'")
               .fetchall())
    assert rows == {("tcga-cesc", 3), ("gtex-cervix", 3)}  # subtypes from clinical.tsv, sites from the GTEx table
