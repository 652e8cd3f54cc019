from __future__ import annotations

import csv
import io
import json
import os
import tarfile
import uuid
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from pathboard.core.engine import plugins
from pathboard.core.errors import DatasetNotFoundError
from support.helpers import mirror


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


RNG = np.random.default_rng(0)


def image(path: Path, size: int = 16) -> Path:
    """A small random RGB image in the format its suffix names (.png, .jpg, .tif)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(RNG.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    return path


def sheet(path: Path, header: list, rows: list[list]) -> Path:
    from openpyxl import Workbook

    path.parent.mkdir(parents=True, exist_ok=True)
    wb = Workbook()
    wb.active.append(header)
    for row in rows:
        wb.active.append(row)
    wb.save(path)
    return path


def dataset(id):
    return plugins.get("dataset", id)


def not_found(id, root, *fragments):
    """The loader's error for ``root``: one line naming each fragment."""
    with pytest.raises(DatasetNotFoundError) as exc:
        dataset(id).manifest(root)
    message = str(exc.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def labelled(m, names):
    """{path: class name} of a manifest."""
    return {p: names[label] if label >= 0 else None for p, label in zip(m.paths, m.labels.tolist())}


WSSS = {"436219-7159-48057-[1, 0, 0].png": "tumor", "436219-7159-48313-[0, 1, 0].png": "stroma",
        "436220-1021-2210-[0, 0, 1].png": "normal", "436221-512-777-[0, 0, 1].png": "normal",
        "436221-99-100-[1, 1, 0].png": None, "436222-5-5-[1, 0, 1].png": None}


def write_wsss4luad(root: Path) -> Path:
    train = root / "WSSS4LUAD" / "1.training"
    for name in WSSS:
        image(train / name)
    image(root / "WSSS4LUAD" / "2.validation" / "img" / "00.png")
    image(root / "WSSS4LUAD" / "2.validation" / "mask" / "00.png")
    return train


HEADER = ["", "image_name", "NC", "G3", "G4", "G5", "G4C"]  # pandas' unnamed index column first


TEST_ROWS = [["a.jpg", 1, 0, 0, 0, 0], ["b.jpg", 0, 1, 0, 0, 0], ["c.jpg", 0, 0, 1, 0, 1], ["d.jpg", 0, 0, 0, 1, 0],
             ["e.jpg", 0, 1, 0, 0, 0]]


TRAIN_ROWS = [["t1.jpg", 0, 0, 0, 1, 0], ["t2.jpg", 1, 0, 0, 0, 0], ["t3.jpg", 0, 1, 1, 0, 0],
              ["gone.jpg", 1, 0, 0, 0, 0]]


def write_sicapv2(root: Path, test_rows=TEST_ROWS) -> Path:
    base = root / "SICAPv2"
    for name, *_ in TEST_ROWS + TRAIN_ROWS[:-1]:  # gone.jpg is listed but not on disk
        image(base / "images" / name, 32)
    (base / "masks").mkdir()
    sheet(base / "partition/Test/Test.xlsx", HEADER, [[i, *r] for i, r in enumerate(test_rows)])
    sheet(base / "partition/Test/Train.xlsx", HEADER, [[i, *r] for i, r in enumerate(TRAIN_ROWS)])
    sheet(base / "partition/Validation/Val2/Test.xlsx", HEADER, [[0, *TRAIN_ROWS[1]]])
    return base


BACH_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Annotations MicronsPerPixel="0.467000">
  <Annotation Id="1" Name="" ReadOnly="0" LineColor="65280">
    <Attributes><Attribute Name="Description" Id="0" Value=""/></Attributes>
    <Regions>
      <RegionAttributeHeaders><AttributeHeader Id="9999" Name="Region" ColumnWidth="-1"/></RegionAttributeHeaders>
      <Region Id="1" Type="0" Text="Benign" NegativeROA="0">
        <Attributes/>
        <Vertices><Vertex X="10" Y="20" Z="0"/><Vertex X="30.5" Y="20" Z="0"/><Vertex X="30" Y="45" Z="0"/></Vertices>
      </Region>
      <Region Id="2" Type="0" Text="" NegativeROA="0">
        <Attributes><Attribute Name="1" Id="0" Value="Carcinoma in situ"/></Attributes>
        <Vertices>
          <Vertex X="100" Y="100"/><Vertex X="200" Y="100"/><Vertex X="200" Y="200"/><Vertex X="100" Y="200"/>
        </Vertices>
      </Region>
      <Region Id="3" Type="0" Text="Invasive carcinoma" NegativeROA="0">
        <Vertices><Vertex X="1" Y="1"/><Vertex X="2" Y="1"/><Vertex X="2" Y="3"/></Vertices>
      </Region>
      <Region Id="4" Type="0" Text="Benign"><Vertices><Vertex X="1" Y="1"/></Vertices></Region>
    </Regions>
  </Annotation>
</Annotations>
"""


def write_bach(root: Path) -> Path:
    top = root / "ICIAR2018_BACH_Challenge"
    for cls, names in {"Normal": ["n001.tif", "n002.tif"], "Benign": ["b001.tif"], "InSitu": ["is001.tif"],
                       "Invasive": ["iv001.tif", "iv002.tif"]}.items():
        for name in names:
            image(top / "Photos" / cls / name)
    (top / "Photos" / "microscopy_ground_truth.csv").write_text("n001.tif,Normal\n")
    (top / "WSI" / "gt_thumbnails").mkdir(parents=True)
    for name in ("A01.svs", "A02.svs", "03.svs"):
        (top / "WSI" / name).write_bytes(name.encode() * 10)
    (top / "WSI" / "A01.xml").write_text(BACH_XML)
    return top


def write_skin(root: Path, relabel: bool = False) -> Path:
    data = root / "skincancer" / "data"
    rows = [("nontumor_skin_dermis_dermis", "ws_1_1", "Train"), ("nontumor_skin_dermis_dermis", "ws_1_2", "Test"),
            ("tumor_skin_epithelial_bcc", "ws_2_1", "Validation"), ("tumor_skin_naevus_naevus", "ws_3_1", "Test"),
            ("tumor_skin_melanoma_melanoma", "ws_4_1", "Test")]
    data.mkdir(parents=True, exist_ok=True)
    with open(data / "tiles-v2.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["", "file", "case", "class", "set"])
        for i, (cls, tile, split) in enumerate(rows):
            file = f"data/tiles/{cls}/{cls}_{tile}.jpg"
            if cls != "tumor_skin_melanoma_melanoma":  # listed, not on disk
                image(root / "skincancer" / file)
            label = "tumor_skin_epithelial_sqcc" if relabel and tile == "ws_3_1" else cls
            w.writerow([i, file, tile.split("_")[1], label, split])
    (data / "class_dict.json").write_text("{}")
    return data


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


def write_csv(path: Path, header, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


DHMC_ROWS = [("DHMC_0001.tif", "solid"), ("DHMC_0002.tif", "lepidic"), ("DHMC_0003.tif", "Acinar"),
             ("DHMC_0004.tif", "micropapillary"), ("DHMC_0005.tif", "papillary"), ("DHMC_0006.tif", "acinar")]


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


def write_arch(root, shared_data):
    """books_set and pubmed_set as the official archives unpack, with real patches as images."""
    patches = sorted(f for f in (shared_data / "CRC-VAL-HE-7K").rglob("*") if f.is_file())
    books = root / "books_set"
    (books / "images").mkdir(parents=True)
    rows = {}

    def image(folder, uuid, ext, i):
        with Image.open(patches[i]) as im:
            im.convert("RGB").resize((32, 32)).save(folder / "images" / f"{uuid}.{ext}")

    # figure 00: three panels sharing one caption (a bag); figure 01: a single panel
    for i, letter in enumerate("ABC"):
        image(books, f"b-{i}", "png", i)
        rows[str(i)] = {"figure_id": "00", "letter": letter, "caption": " A, B, C: adenoma, three panels.",
                        "uuid": f"b-{i}"}
    image(books, "b-3", "png", 3)
    rows["3"] = {"figure_id": "01", "letter": "Single", "caption": "Mucinous carcinoma.", "uuid": "b-3"}
    rows["4"] = {"figure_id": "02", "letter": "Single", "caption": "A caption whose image is missing.",
                 "uuid": "b-missing"}
    (books / "captions.json").write_text(json.dumps(rows))
    pubmed = root / "ARCH" / "pubmed_set"  # also found one level down
    (pubmed / "images").mkdir(parents=True)
    image(pubmed, "p-0", "jpg", 4)
    image(pubmed, "p-1", "png", 5)
    image(pubmed, "p-2", "jpg", 6)
    (pubmed / "captions.json").write_text(json.dumps({
        "0": {"caption": "Lymphocytes.", "uuid": "p-0"}, "1": {"caption": "Stroma.", "uuid": "p-1"},
        "2": {"caption": "Stroma.", "uuid": "p-2"}, "3": {"caption": "Stroma, again.", "uuid": "p-2"}}))


#: two patients per grade, so a patient-disjoint few-shot split has every grade on both sides
TISSUENET_SLIDES = {f"C{i + 1:02d}_B{i + 1:03d}_S01.tif": i // 2 for i in range(8)}


#: lesion outlines (level-0 px) on two slides; the other two are graded only
TISSUENET_LESIONS = [("a1", "C05_B005_S01.tif", "POLYGON ((100 100, 900 100, 900 500, 100 500, 100 100))", 2),
                     ("a2", "C05_B005_S01.tif", "POLYGON ((100 600, 900 600, 900 900, 100 900, 100 600))", 0),
                     ("a3", "C07_B007_S01.tif", "POLYGON ((0 0, 1024 0, 1024 1024, 0 1024, 0 0))", 3)]


def write_tissuenet_slides(root: Path) -> None:
    """TissueNet's CSVs, then pyramidal TIFs at 0.25 µm/px (1024 px: tileable at 0.5 µm/px) and big lesions."""
    write_tissuenet(root, labels=TISSUENET_SLIDES, missing=tuple(TISSUENET_SLIDES))
    rng = np.random.default_rng(0)
    for name in TISSUENET_SLIDES:
        img = np.full((1024, 1024, 3), 245, dtype=np.uint8)  # white glass around the tissue
        img[64:-64, 64:-64] = texture("purple", (896, 896), rng)
        path = root / "tissuenet" / "train" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with tifffile.TiffWriter(path) as tif:
            tif.write(img, tile=(256, 256), photometric="rgb", compression="zlib",
                      resolution=(1e4 / 0.25, 1e4 / 0.25), resolutionunit="CENTIMETER")
            tif.write(img[::2, ::2], tile=(256, 256), photometric="rgb", subfiletype=1)
    with open(root / "tissuenet" / "train_annotations.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["annotation_id", "filename", "geometry", "annotation_class", "us_jpeg_url", "eu_jpeg_url",
                    "asia_jpeg_url"])
        w.writerows([[a, f, g, c, "", "", ""] for a, f, g, c in TISSUENET_LESIONS])


PURPLE, PINK = "dense purple tissue", "smooth pink tissue"


def texture(kind: str, shape, rng) -> np.ndarray:
    h, w = shape
    if kind == "purple":  # dark, high-frequency nuclei-like speckle
        base = np.array([110, 50, 150], dtype=np.float32)
        noise = rng.normal(0, 45, (h, w, 1)) * (rng.random((h, w, 1)) < 0.4)
    else:  # light, smooth
        base = np.array([235, 150, 195], dtype=np.float32)
        noise = rng.normal(0, 6, (h, w, 1))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


#: LC25000 lung patches per class in the folder dataset of ``fixtures``
LUNG_PER_CLASS = 32


def fixtures(root, shared_data):
    """CAMELYON16's test layout around the real CMU slide, a class folder (LC25000 lung, 32 real patches a
    class) and a caption CSV."""
    cmu = shared_data / "slides" / "CMU-1-Small-Region.svs"
    test = root / "CAMELYON16" / "testing"
    (test / "images").mkdir(parents=True)
    (test / "lesion_annotations").mkdir()
    for name in ("test_001", "test_002"):
        (test / "images" / f"{name}.tif").symlink_to(cmu)
    (test / "reference.csv").write_text("test_001,Tumor,Macro\ntest_002,Normal\n")
    polygon = [(0, 600, 700), (1, 1500, 700), (2, 1500, 1800), (3, 600, 1800)]
    (test / "lesion_annotations" / "test_001.xml").write_text(asap_xml([("Annotation 0", "_0", polygon)]))
    (root / "CAMELYON16" / "training" / "normal").mkdir(parents=True)
    lung = mirror(shared_data / "lung_colon_image_set" / "lung_image_sets", root / "lung", per_folder=LUNG_PER_CLASS)
    with open(root / "captions.csv", "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["image_path", "caption"])
        for cls, text in [("lung_aca", "lung adenocarcinoma"), ("lung_n", "benign lung tissue"),
                          ("lung_scc", "lung squamous cell carcinoma")]:
            for image in sorted((lung / cls).iterdir())[:4]:
                out.writerow([f"lung/{cls}/{image.name}", f"an H&E image of {text}."])
    return lung


LUNG = "lung_colon_image_set/lung_image_sets"


def sample(shared_data: Path) -> list[str]:
    return sorted(p.relative_to(shared_data / LUNG).as_posix() for p in (shared_data / LUNG).glob("*/*.jpeg"))


#: slides of TITAN's split files (barcode, project, OncoTree code, split), and one TCGA slide that is not in them
TCGA_OT_LISTED = [("TCGA-DG-A2KK-01Z-00-DX1", "TCGA-CESC", "CESC", "test"),
          ("TCGA-EM-A3O8-01Z-00-DX1", "TCGA-THCA", "THFO", "test")]
TCGA_OT_NOT_LISTED = ("TCGA-ZZ-0000-01Z-00-DX1", "TCGA-CESC")


def write_tcga_ot(root, svs):
    """TCGA/<project>/<file_id>/<barcode>.<uuid>.svs for four TCGA-OT slides (two test, one train, one val) and one
    TCGA slide the split files do not list; returns (barcode, project, OncoTree code, split) of the listed ones."""
    from pathboard.plugins.datasets.tcga_slides import split_table

    table = split_table()
    train = next((b, "TCGA-BRCA", code, s) for b, (code, s) in table.items() if s == "train" and code == "IDC")
    val = next((b, "TCGA-LUAD", code, s) for b, (code, s) in table.items() if s == "val" and code == "LUAD")
    slides = [*TCGA_OT_LISTED, train, val]
    for barcode, project, _, _ in [*slides, (*TCGA_OT_NOT_LISTED, "", "")]:
        gdc_slide(root / "TCGA" / project, barcode, svs)
    return slides
