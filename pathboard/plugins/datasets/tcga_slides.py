"""Slide-level TCGA projects (and TITAN's pan-cancer TCGA-OT) as the GDC Data Transfer Tool downloads them, https://portal.gdc.cancer.gov.

``gdc-client download -m <manifest> -d DIR`` writes one folder per file: ``DIR/<file_id>/<file_name>``
(``<file_id>`` the GDC file UUID, ``<file_name>`` e.g. ``TCGA-A1-A0SB-01Z-00-DX1.<uuid>.svs``, plus a
``logs/`` folder). pathboard keeps one such download per project under ``TCGA/``:
``TCGA/TCGA-BRCA/<file_id>/TCGA-...svs``, ``TCGA/TCGA-KIRC/...``. The class of a slide is its project
(KIRC -> CCRCC, KIRP -> PRCC, KICH -> CHRCC; LUAD, LUSC), or comes from ``labels.csv`` in the project
folder (``slide_id,label``: ``slide_id`` the file name without ``.svs``, its barcode part
``TCGA-A1-A0SB-01Z-00-DX1`` or the file UUID; ``label`` a class of the dataset, empty for none), which
overrides everything else. TCGA-BRCA has no project-level IDC/ILC label, so ``tcga-brca`` needs that file
(e.g. written from the GDC clinical ``primary_diagnosis``: "Infiltrating duct carcinoma, NOS" -> IDC,
"Lobular carcinoma, NOS" -> ILC); slides it does not list stay unlabelled.

``tcga-cesc`` (SCC, ADC, ASC: squamous cell, adeno- and adenosquamous carcinoma) labels its slides from
the GDC clinical export in the project folder, as the portal saves it (Projects -> TCGA-CESC -> Clinical
-> TSV, or Cart -> Clinical -> TSV): ``clinical.project-*.tar.gz`` / ``clinical.cart.*.tar.gz`` (its
``clinical.tsv`` is read from the archive) or that ``clinical.tsv`` itself; every export present is read.
A row's ICD-O-3 ``morphology`` decides (8050-8089/3 squamous; 8140-8389/3 and 8440-8499/3 glandular, less
8240-8249/3, the carcinoid and neuroendocrine tumours, which are no adenocarcinoma; 8560/3 adenosquamous), its
``primary_diagnosis`` text when the code is missing (``'--``) or maps to no class. Slides join the export
by case (the first 12 characters of the barcode); a case has one row per treatment and takes the class its
mappable rows name; a case whose rows name different classes stays unlabelled (counted in a warning), as do
cases the export lacks.

The subtyping sets use the diagnostic (FFPE, ``-DX``) slides only; ``tcga-cesc`` takes every slide found,
so it mixes FFPE diagnostic slides with frozen tissue slides (``-TS``/``-BS``); each takes its case's class.

Every TCGA set has report texts (``reports``) when the TCGA-Reports release (Kefeli et al. 2024,
https://github.com/tatonetti-lab/tcga-path-reports: ``TCGA_Reports.csv.zip``, unzipped) is at
``<data root>/TCGA-Reports/TCGA_Reports.csv`` (columns ``patient_filename,text``; ``patient_filename``
e.g. ``TCGA-BP-5195.25c0b433-...``, its first 12 characters the case barcode).

Verified and assumed: this loader was written without internet access, so nothing here was checked against
a live download. The gdc-client layout and slide barcodes are as the GDC documents them. The clinical export
columns are taken from the two header spellings the portal has used (``case_submitter_id``, ``morphology``,
``primary_diagnosis`` in the exports of the pre-2024 portal; ``cases.submitter_id``, ``diagnoses.morphology``,
``diagnoses.primary_diagnosis`` in those of the 2024 portal, matching the GDC API field names) and ``'--`` for
missing values; not verified against a live export.

Groups: each slide's ``group`` is its case (the patient: the barcode's first 12 characters, ``TCGA-A1-A0SB``,
also kept as ``case``), so a patient's slides stay together. TCGA-Reports' file and column names come from the
repository's README and third-party code that reads it, not from the file itself.

``tcga-ot``: TCGA-OT (TITAN, Ding et al. 2024): 46 OncoTree classes over 11,186 FFPE diagnostic slides of TCGA,
with TITAN's official train/val/test splits.

The slides come from the GDC exactly as the other TCGA sets do (``TCGA/<project>/<file_id>/TCGA-....svs``, one
``gdc-client`` download per project; every project with a TCGA-OT slide). The label and split of each slide are
data shipped with pathboard, ``data/tcga-ot.csv.gz`` (columns ``slide,OncoTreeCode,split``): the
``datasets/tcga-ot_{train,val,test}.csv`` files of https://github.com/mahmoodlab/TITAN (commit 33042f5), reduced to
each slide's barcode (``slide_id`` before its first dot), its ``OncoTreeCode`` and its split. Slides under the
data root that the split files do not list are not part of the task and are left out. Zero-shot and retrieval
queries are the ``test`` slides; few-shot and the slide-retrieval gallery use ``train``. Groups are cases (a
patient's slides stay on one side). The class prompts are TITAN's own (``prompts/tcga-ot.json``, with TITAN's 23
templates).
"""
from __future__ import annotations

import csv
import gzip
import io
import os
import re
import sys
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath

from pathboard.api import DatasetNotFoundError, Manifest, PathboardError, Record, SlideDataset, hookimpl, layout_error
from pathboard.plugins.datasets._common import read_table

URL = "https://portal.gdc.cancer.gov"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SLIDE_EXTENSIONS = (".svs", ".tif", ".tiff")
LABELS = "labels.csv"
CLINICAL = "clinical.tsv"
CLINICAL_ARCHIVES = "clinical.*.tar.gz"
#: a GDC clinical export's columns under either header spelling, and its missing-value marks
CASE = ("case_submitter_id", "cases.submitter_id")
MORPHOLOGY = ("morphology", "diagnoses.morphology")
DIAGNOSIS = ("primary_diagnosis", "diagnoses.primary_diagnosis")
MISSING = {"", "'--", "--"}
#: relative to the data root (the parent of the TCGA folder)
REPORTS = Path("TCGA-Reports") / "TCGA_Reports.csv"
REPORTS_URL = "https://github.com/tatonetti-lab/tcga-path-reports"

#: ICD-O-3 histology codes (malignant, /3) -> tcga-cesc class, and primary_diagnosis words tried in order
CESC_CODES = ((8050, 8089, "SCC"), (8140, 8239, "ADC"), (8250, 8389, "ADC"), (8440, 8499, "ADC"),
              (8560, 8560, "ASC"))  # 8240-8249: carcinoid and neuroendocrine tumours, none of the three
CESC_WORDS = (("adenosquamous", "ASC"), ("squamous cell carcinoma", "SCC"), ("adenocarcinoma", "ADC"))


def cesc_subtype(morphology: str, diagnosis: str) -> str | None:
    """The tcga-cesc class of a GDC diagnosis: from its ICD-O-3 code, else its primary_diagnosis text."""
    code = re.fullmatch(r"(\d{4})/3", morphology)
    if code:
        number = int(code[1])
        label = next((c for low, high, c in CESC_CODES if low <= number <= high), None)
        if label:
            return label
    text = diagnosis.lower()
    return next((c for words, c in CESC_WORDS if words in text), None)


def access(projects: tuple[str, ...], strategy: str, clinical: bool = False) -> str:
    names = ", ".join(projects)
    folder = projects[0] if len(projects) == 1 else "<project>"
    steps = [
        f"GDC Data Portal ({URL}/analysis_page?app=Downloads), Repository: filter Project = {names}, "
        f"Data Type = Slide Image, {strategy}Access = open; add all files to the cart, Cart -> Download "
        "-> Manifest; install the GDC Data Transfer Tool (https://gdc.cancer.gov/access-data/"
        f"gdc-data-transfer-tool); per project run `gdc-client download -m gdc_manifest.<date>.txt -d "
        f"<data root>/TCGA/{folder}` with a manifest holding that project's slides only."]
    if clinical:
        steps.append(f"Labels: on the portal open Projects -> {folder} -> Clinical -> TSV (or, with the cases in "
                     "the cart, Cart -> Clinical -> TSV) and save the clinical.*.tar.gz (or the clinical.tsv "
                     f"inside it) into <data root>/TCGA/{folder}/; a {LABELS} there (slide_id,label) overrides it.")
    steps.append(f"Optional report texts: download TCGA_Reports.csv.zip from {REPORTS_URL} (Kefeli et al. 2024) "
                 f"and unzip it to <data root>/{REPORTS.as_posix()}.")
    return " ".join(steps)


def _slide_ids(name: str, file_id: str) -> list[str]:
    stem = name.rsplit(".", 1)[0]
    return [stem, stem.split(".", 1)[0], file_id]


def _value(row: dict, names: tuple[str, ...]) -> str:
    """A column of a clinical export row under either spelling; "" when missing."""
    for name in names:
        value = (row.get(name) or "").strip()
        if value not in MISSING:
            return value
    return ""


def _clinical_files(folder: Path) -> list[Path]:
    return [p for p in (folder / CLINICAL, *sorted(folder.glob(CLINICAL_ARCHIVES))) if p.is_file()]


def _tsv_rows(fh, source: Path) -> Iterator[dict]:
    reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
    names = set(reader.fieldnames or [])
    if not names & set(CASE) or not names & {*MORPHOLOGY, *DIAGNOSIS}:
        raise PathboardError(f"{source}: not a GDC clinical export: expected columns {' or '.join(CASE)} and "
                             f"{' or '.join(MORPHOLOGY + DIAGNOSIS)}")
    yield from reader


def clinical_rows(folder: Path) -> Iterator[dict]:
    """The rows of every GDC clinical export in ``folder``; an archive's clinical.tsv is read in place."""
    for path in _clinical_files(folder):
        if path.name == CLINICAL:
            with open(path, newline="", encoding="utf-8-sig") as fh:
                yield from _tsv_rows(fh, path)
            continue
        with tarfile.open(path) as tar:
            member = next((m for m in tar.getmembers() if m.isfile() and PurePosixPath(m.name).name == CLINICAL),
                          None)
            if member is None:
                raise PathboardError(f"{path}: holds no {CLINICAL} (has {', '.join(tar.getnames()[:5])})")
            with io.TextIOWrapper(tar.extractfile(member), encoding="utf-8-sig", newline="") as fh:
                yield from _tsv_rows(fh, path / member.name)


@dataclass
class TCGASlides(SlideDataset):
    #: TCGA project -> class name ("" when the project gives no label)
    projects: dict = field(default_factory=dict)
    #: keep only slides whose barcode has this slide type (e.g. "DX"); "" keeps all
    slide_type: str = ""
    #: (morphology, primary_diagnosis) of a GDC clinical export row -> class name or None; when set, the
    #: project folder's clinical export labels the slides by case
    subtype: Callable[[str, str], str | None] | None = None

    @property
    def layout(self) -> str:
        project = next(iter(self.projects)) if len(self.projects) == 1 else "TCGA-<project>"
        sources = [f"{project}/{CLINICAL} or {CLINICAL_ARCHIVES}"] if self.subtype else []
        sources += [f"{project}/{LABELS}: slide_id,label"] if self.classes else []
        labels = f" (+ {' and/or '.join(sources)})" if sources else ""
        return f"{self.folder}/{project}/<file_id>/TCGA-*.svs{labels}"

    def _labels(self, folder: Path) -> dict[str, int]:
        path = folder / LABELS
        if not path.is_file():
            return {}
        out = {}
        for row in read_table(self.id, path, ("slide_id", "label"), "slide_id,label"):
            label = row["label"]
            if label and label not in self.classes:
                raise PathboardError(f"{path}: label {label!r} of {row['slide_id']} is not a class of {self.id} "
                                     f"({', '.join(self.classes)})")
            out[row["slide_id"]] = self.classes.index(label) if label else -1
        return out

    def _case_labels(self, folder: Path) -> dict[str, int]:
        """Case barcode -> class index from the clinical export(s); -1 where a case's diagnoses conflict."""
        if not self.subtype:
            return {}
        named: dict[str, set[str]] = {}
        for row in clinical_rows(folder):
            case, label = _value(row, CASE), self.subtype(_value(row, MORPHOLOGY), _value(row, DIAGNOSIS))
            if case and label:
                named.setdefault(case, set()).add(label)
        conflicting = sorted(case for case, labels in named.items() if len(labels) > 1)
        if conflicting:
            print(f"warning: {self.id}: {len(conflicting)} case(s) with conflicting diagnoses in the clinical "
                  f"export left unlabelled: {', '.join(conflicting)}", file=sys.stderr)
        return {case: self.classes.index(next(iter(labels))) if len(labels) == 1 else -1
                for case, labels in named.items()}

    def records(self, base: Path) -> Iterable[Record]:
        present = [p for p in self.projects if (base / p).is_dir()]
        if not present:
            raise layout_error(self.id, base, f"project folder(s) {', '.join(str(base / p) for p in self.projects)} "
                                              f"(layout {self.layout})")
        for project in present:
            folder = base / project
            overrides, cases = self._labels(folder), self._case_labels(folder)
            default = self.classes.index(self.projects[project]) if self.projects[project] else -1
            clinical = bool(self.subtype and _clinical_files(folder))
            if default < 0 and self.classes and not clinical and not (folder / LABELS).is_file():
                export = f" or a GDC clinical export ({CLINICAL} or {CLINICAL_ARCHIVES})" if self.subtype else ""
                raise DatasetNotFoundError(f"{self.id}: {folder / LABELS}{export} not found: {project} slides have no "
                                           f"project-level {'/'.join(self.classes)} label (columns slide_id,label)")
            with os.scandir(folder) as entries:
                file_ids = sorted(e.name for e in entries if e.is_dir() and UUID.match(e.name))
            for file_id in file_ids:
                for name in sorted(os.listdir(folder / file_id)):
                    if not name.lower().endswith(SLIDE_EXTENSIONS) or not name.startswith("TCGA-"):
                        continue
                    barcode = name.split(".", 1)[0]
                    if self.slide_type and not barcode.rsplit("-", 1)[-1].startswith(self.slide_type):
                        continue
                    label = next((overrides[k] for k in _slide_ids(name, file_id) if k in overrides),
                                 cases.get(barcode[:12], default))
                    yield Record(f"{project}/{file_id}/{name}", label, None,
                                 (("project", project), ("case", barcode[:12]), ("file_id", file_id),
                                  ("group", barcode[:12])))

    def reports(self, manifest: Manifest) -> dict[str, str]:
        """Item path -> its case's pathology report (TCGA-Reports) from ``<data root>/TCGA-Reports/TCGA_Reports.csv``;
        items whose case has no report are left out; {} when the file is absent."""
        path = manifest.root.parent / REPORTS
        if not path.is_file():
            return {}
        texts: dict[str, str] = {}
        for row in read_table(self.id, path, ("patient_filename", "text"), "patient_filename,text"):
            if row["text"]:
                texts.setdefault(row["patient_filename"][:12], row["text"])
        return {p: texts[m["case"]] for p, m in zip(manifest.paths, manifest.meta) if m.get("case") in texts}


SPLITS = Path(__file__).parent / "data" / "tcga-ot.csv.gz"
SOURCE = "https://github.com/mahmoodlab/TITAN/tree/main/datasets"
#: the projects of the split files' ``project_id`` column
PROJECTS = ("TCGA-ACC", "TCGA-BLCA", "TCGA-BRCA", "TCGA-CESC", "TCGA-COAD", "TCGA-ESCA", "TCGA-GBM", "TCGA-HNSC",
            "TCGA-KICH", "TCGA-KIRC", "TCGA-KIRP", "TCGA-LGG", "TCGA-LIHC", "TCGA-LUAD", "TCGA-LUSC", "TCGA-MESO",
            "TCGA-OV", "TCGA-PAAD", "TCGA-PCPG", "TCGA-PRAD", "TCGA-READ", "TCGA-SARC", "TCGA-SKCM", "TCGA-STAD",
            "TCGA-TGCT", "TCGA-THCA", "TCGA-THYM", "TCGA-UCEC", "TCGA-UCS", "TCGA-UVM")


@cache
def split_table() -> dict[str, tuple[str, str]]:
    """Slide barcode -> (OncoTree code, split) of every TCGA-OT slide."""
    with gzip.open(SPLITS, "rt", newline="") as fh:  # csv.reader: a DictReader took 36 ms of every registry build
        rows = csv.reader(fh)
        header = next(rows)
        slide, code, split = (header.index(c) for c in ("slide", "OncoTreeCode", "split"))
        return {row[slide]: (row[code], row[split]) for row in rows}


@dataclass
class TCGAOT(TCGASlides):
    @property
    def layout(self) -> str:
        return f"{self.folder}/TCGA-<project>/<file_id>/TCGA-*-DX*.svs (the slides listed in TITAN's TCGA-OT splits)"

    def records(self, base: Path) -> Iterable[Record]:
        table = split_table()
        projects = sorted(p.name for p in base.iterdir() if p.is_dir() and p.name.startswith("TCGA-")) \
            if base.is_dir() else []
        found = 0
        for project in projects:
            with os.scandir(base / project) as entries:
                file_ids = sorted(e.name for e in entries if e.is_dir() and UUID.match(e.name))
            for file_id in file_ids:
                for name in sorted(os.listdir(base / project / file_id)):
                    barcode = name.split(".", 1)[0]
                    if not name.lower().endswith(SLIDE_EXTENSIONS) or barcode not in table:
                        continue
                    code, split = table[barcode]
                    found += 1
                    yield Record(f"{project}/{file_id}/{name}", self.classes.index(code), split,
                                 (("project", project), ("case", barcode[:12]), ("file_id", file_id),
                                  ("group", barcode[:12])))
        if not found:
            raise DatasetNotFoundError(f"{self.id}: none of the {len(table):,} TCGA-OT slides is under {base} "
                                       f"(layout {self.layout})")


@hookimpl
def register_datasets(register):
    dx = "Experimental Strategy = Diagnostic Slide, "
    sets = [
        ("tcga-cesc", "TCGA-CESC subtypes (SCC/ADC/ASC)", {"TCGA-CESC": ""}, ["SCC", "ADC", "ASC"], "", 914,
         {"organ": "cervix", "stain": "H&E", "group": "cervix"}, "", cesc_subtype),
        ("tcga-brca", "TCGA-BRCA IDC vs ILC", {"TCGA-BRCA": ""}, ["IDC", "ILC"], "DX", None,
         {"organ": "breast", "stain": "H&E", "group": "general"}, dx, None),
        ("tcga-rcc", "TCGA RCC subtypes (KIRC/KIRP/KICH)",
         {"TCGA-KIRC": "CCRCC", "TCGA-KIRP": "PRCC", "TCGA-KICH": "CHRCC"},
         ["CCRCC", "PRCC", "CHRCC"], "DX", None, {"organ": "kidney", "stain": "H&E", "group": "general"}, dx, None),
        ("tcga-nsclc", "TCGA NSCLC subtypes (LUAD/LUSC)", {"TCGA-LUAD": "LUAD", "TCGA-LUSC": "LUSC"},
         ["LUAD", "LUSC"], "DX", None, {"organ": "lung", "stain": "H&E", "group": "general"}, dx, None),
    ]
    for id, title, projects, classes, slide_type, expected, tags, strategy, subtype in sets:
        register(TCGASlides(
            id=id, folder="TCGA", title=title, url=URL, projects=projects, classes=classes, slide_type=slide_type,
            subtype=subtype, prompt_file=f"{id}.json", expected_files=expected, tags=tags,
            access=access(tuple(projects), strategy, clinical=subtype is not None)))
    codes = sorted({code for code, _ in split_table().values()})
    register(TCGAOT(
        id="tcga-ot", folder="TCGA", title="TCGA-OT (46 OncoTree classes, TITAN's splits)", url=URL, classes=codes,
        splits=("train", "val", "test"), eval_split="test", prompt_file="tcga-ot.json", expected_files=11186,
        tags={"organ": "pan-cancer", "stain": "H&E", "group": "general"},
        access=access(PROJECTS, "Experimental Strategy = Diagnostic Slide, ") + f" Splits: {SOURCE} (shipped)."))
