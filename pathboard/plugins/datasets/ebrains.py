"""The EBRAINS Digital Brain Tumour Atlas (Roetzer-Pejrimovsky et al., "The Digital Brain Tumour Atlas,
an open histopathology resource", Scientific Data 2022),
https://search.kg.ebrains.eu/instances/8fc108ab-e2b4-406f-8999-60269dc1f994.

3,115 H&E whole-slide images (Hamamatsu ``.ndpi``) covering 126 brain tumour types (WHO 2016 names) and
control tissue, from the Medical University of Vienna, shared on EBRAINS after log-in and acceptance
of the data use agreement. Official layout of the dataset version (``v1.0``): ``annotation.csv`` (one
row per slide: ``uuid``, ``pat_id``, ``diagnosis`` and clinical columns; ``diagnosis`` is empty for
control tissue) and one folder per diagnosis holding ``<uuid>.ndpi`` (the folder is the diagnosis with
``/`` written as ``-``). pathboard's layout: ``DigitalBrainTumourAtlas/`` holding that version folder's
content, directly or as ``DigitalBrainTumourAtlas/v1.0/``. Labels come from ``annotation.csv``; each
slide is found by its uuid in whichever folder holds it, so a partial download (some diagnoses only)
is read as such. Control slides are kept as unlabelled items.

``ebrains``: all 126 diagnoses, no official split (zero-shot scores every labelled slide).

``ebrains-rare30``: the 30 diagnoses with at least 30 slides (2,319 slides) used for rare-tumour
subtyping by UNI (Chen et al., Nature Medicine 2024) and CONCH (Lu et al., Nature Medicine 2024). The
class list and the test split are those mahmoodlab published with PANTHER (``cls_default.py``
``ebrains_subtyping_fine`` and ``splits/classification/ebrains/test.csv``, 573 test slides); what is
not confirmed is that CONCH's zero-shot numbers used exactly that test split rather than all 2,319
slides. The 573 test slides are split ``test``; the others (UNI's train and val) ``trainval``.

Groups: each slide's ``group`` is its patient, ``annotation.csv``'s ``pat_id`` (also kept as item metadata);
a row without one has no group.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pathboard.api import DatasetNotFoundError, Record, SlideDataset, hookimpl, layout_error
from pathboard.plugins.datasets._common import read_table, slide_index
from pathboard.plugins.datasets._ebrains_split import rare30_test_uuids

URL = "https://search.kg.ebrains.eu/instances/8fc108ab-e2b4-406f-8999-60269dc1f994"
LABELS = "annotation.csv"
VERSION = "v1.0"
TAGS = {"organ": "brain", "stain": "H&E", "group": "general"}
ACCESS = (
    f"registration: open {URL} (EBRAINS Knowledge Graph, 'The Digital Brain Tumour Atlas'), log in with a free "
    "EBRAINS account and accept the data use agreement; download the dataset version v1.0 (annotation.csv and "
    "the diagnosis folders of <uuid>.ndpi slides; the web zip download breaks on this size, fetch folder by "
    "folder or slide by slide) into <data root>/DigitalBrainTumourAtlas/ (no checksums are published)"
)

#: the 126 diagnoses of annotation.csv (WHO 2016 names, British spelling)
CLASSES = [
    "Adamantinomatous craniopharyngioma", "Anaplastic astrocytoma, IDH-mutant", "Anaplastic astrocytoma, IDH-wildtype",
    "Anaplastic ependymoma", "Anaplastic ganglioglioma", "Anaplastic meningioma",
    "Anaplastic oligodendroglioma, IDH-mutant and 1p/19q codeleted", "Anaplastic pleomorphic xanthoastrocytoma",
    "Angiocentric glioma", "Angiomatous meningioma", "Angiosarcoma", "Astroblastoma",
    "Atypical choroid plexus papilloma", "Atypical meningioma", "Atypical teratoid/rhabdoid tumour",
    "CNS ganglioneuroblastoma", "Cellular schwannoma", "Central neurocytoma", "Cerebellar liponeurocytoma",
    "Chondrosarcoma", "Chordoid glioma of the third ventricle", "Chordoid meningioma", "Chordoma",
    "Choriocarcinoma", "Choroid plexus carcinoma", "Choroid plexus papilloma", "Clear cell meningioma",
    "Crystal-storing histiocytosis", "Desmoplastic infantile astrocytoma and ganglioglioma",
    "Diffuse astrocytoma, IDH-mutant", "Diffuse astrocytoma, IDH-wildtype", "Diffuse large B-cell lymphoma of the CNS",
    "Diffuse leptomeningeal glioneuronal tumour", "Diffuse midline glioma, H3 K27M-mutant",
    "Dysembryoplastic neuroepithelial tumour", "Dysplastic cerebellar gangliocytoma",
    "EBV-positive diffuse large B-cell lymphoma, NOS", "Embryonal carcinoma",
    "Embryonal tumour with multilayered rosettes, C19MC-altered", "Ependymoma", "Ependymoma, RELA fusion-positive",
    "Epitheloid MPNST", "Erdheim-Chester disease", "Ewing sarcoma", "Extraventricular neurocytoma", "Fibrosarcoma",
    "Fibrous meningioma", "Follicular lymphoma", "Gangliocytoma", "Ganglioglioma", "Ganglioneuroma",
    "Gemistocytic astrocytoma, IDH-mutant", "Germinoma", "Giant cell glioblastoma", "Glioblastoma, IDH-mutant",
    "Glioblastoma, IDH-wildtype", "Gliosarcoma", "Granular cell tumour of the sellar region", "Haemangioblastoma",
    "Haemangioma", "Haemangiopericytoma", "Hybrid nerve sheath tumours", "Immature teratoma",
    "Immunodeficiency-associated CNS lymphoma", "Inflammatory myofibroblastic tumour",
    "Intravascular large B-cell lymphoma", "Juvenile xanthogranuloma", "Langerhans cell histiocytosis", "Leiomyoma",
    "Leiomyosarcoma", "Lipoma", "Liposarcoma", "Low-grade B-cell lymphomas of the CNS",
    "Lymphoplasmacyte-rich meningioma", "MALT lymphoma of the dura", "Malignant peripheral nerve sheath tumour",
    "Mature teratoma", "Medulloblastoma, SHH-activated and TP53-mutant",
    "Medulloblastoma, SHH-activated and TP53-wildtype", "Medulloblastoma, WNT-activated",
    "Medulloblastoma, non-WNT/non-SHH", "Melanotic schwannoma", "Meningeal melanocytoma", "Meningeal melanoma",
    "Meningothelial meningioma", "Metaplastic meningioma", "Metastatic tumours", "Microcystic meningioma",
    "Mixed germ cell tumour", "Myxopapillary ependymoma", "Neurofibroma", "Olfactory neuroblastoma",
    "Oligodendroglioma, IDH-mutant and 1p/19q codeleted", "Osteochondroma", "Osteoma", "Osteosarcoma",
    "Papillary craniopharyngioma", "Papillary ependymoma", "Papillary glioneuronal tumour", "Papillary meningioma",
    "Papillary tumour of the pineal region", "Paraganglioma", "Perineurioma", "Pilocytic astrocytoma",
    "Pilomyxoid astrocytoma", "Pineal parenchymal tumour of intermediate differentiation", "Pineoblastoma",
    "Pineocytoma", "Pituicytoma", "Pituitary adenoma", "Pleomorphic xanthoastrocytoma", "Plexiform neurofibroma",
    "Psammomatous meningioma", "Rhabdoid meningioma", "Rhabdomyosarcoma", "Rosette-forming glioneuronal tumour",
    "Schwannoma", "Secretory meningioma", "Spindle cell oncocytoma", "Subependymal giant cell astrocytoma",
    "Subependymoma", "T-cell and NK/T-cell lymphomas of the CNS", "Tanycytic ependymoma",
    "Teratoma with malignant transformation", "Transitional meningioma", "Undifferentiated pleomorphic sarcoma",
]

#: the 30 rare-tumour classes of UNI/CONCH (mahmoodlab's ebrains_subtyping_fine), in CLASSES order
RARE30 = [c for c in CLASSES if c in {
    "Glioblastoma, IDH-wildtype", "Transitional meningioma", "Anaplastic meningioma", "Pituitary adenoma",
    "Oligodendroglioma, IDH-mutant and 1p/19q codeleted", "Haemangioma", "Ganglioglioma", "Schwannoma",
    "Anaplastic oligodendroglioma, IDH-mutant and 1p/19q codeleted", "Anaplastic astrocytoma, IDH-wildtype",
    "Pilocytic astrocytoma", "Angiomatous meningioma", "Haemangioblastoma", "Gliosarcoma",
    "Adamantinomatous craniopharyngioma", "Anaplastic astrocytoma, IDH-mutant", "Ependymoma", "Anaplastic ependymoma",
    "Glioblastoma, IDH-mutant", "Atypical meningioma", "Metastatic tumours", "Meningothelial meningioma",
    "Langerhans cell histiocytosis", "Diffuse large B-cell lymphoma of the CNS", "Diffuse astrocytoma, IDH-mutant",
    "Secretory meningioma", "Haemangiopericytoma", "Fibrous meningioma", "Lipoma", "Medulloblastoma, non-WNT/non-SHH",
}]

#: spellings seen in copies of the atlas -> the annotation.csv name
ALIASES = {
    "Lymphoplasmocyte-rich meningioma": "Lymphoplasmacyte-rich meningioma",
    "Embryonal tumour with multilayered rosette, C19MC-altered":
        "Embryonal tumour with multilayered rosettes, C19MC-altered",
}


def _key(name: str) -> str:
    return " ".join(name.replace("/", "-").lower().split())


#: normalised diagnosis (folder spelling, any case) -> class name
_LOOKUP = {_key(c): c for c in CLASSES} | {_key(a): c for a, c in ALIASES.items()}


def diagnosis_class(diagnosis: str) -> str | None:
    """The class of an annotation.csv ``diagnosis`` (None for control tissue); raises KeyError if unknown."""
    if not diagnosis.strip() or _key(diagnosis) == "control":
        return None
    return _LOOKUP[_key(diagnosis)]


@dataclass
class EBRAINS(SlideDataset):
    #: uuids of the official test split, if the dataset has one
    test_slides: frozenset[str] = field(default_factory=frozenset)
    #: split of the slides outside ``test_slides``
    other_split: str | None = None
    #: keep control-tissue slides (empty diagnosis) as unlabelled items
    controls: bool = True

    @property
    def layout(self) -> str:
        return (f"{self.folder}/[{VERSION}/]{LABELS} (uuid, diagnosis) + "
                f"{self.folder}/[{VERSION}/]<diagnosis>/<uuid>.ndpi")

    def records(self, base: Path):
        prefix = VERSION if (base / VERSION / LABELS).is_file() else ""
        data = base / prefix
        labels = data / LABELS
        if not labels.is_file():
            raise layout_error(self.id, base, self.layout, f"{base / LABELS} not found")
        rows = read_table(self.id, labels, ("uuid", "diagnosis"))
        slides = {}  # uuid -> path relative to base
        for name, rel in slide_index(data).items():
            if name.lower().endswith(".ndpi"):
                slides.setdefault(name[: -len(".ndpi")], f"{prefix}/{rel}" if prefix else rel)
        listed = found = 0
        for row in rows:
            try:
                cls = diagnosis_class(row["diagnosis"])
            except KeyError:
                raise DatasetNotFoundError(f"{self.id}: {labels}: slide {row['uuid']} has diagnosis "
                                           f"{row['diagnosis']!r}, not one of the atlas's 126 diagnoses") from None
            if (cls is None and not self.controls) or (cls is not None and cls not in self.classes):
                continue
            listed += 1
            path = slides.get(row["uuid"])
            if path is None:
                continue
            found += 1
            split = "test" if row["uuid"] in self.test_slides else self.other_split
            meta = tuple((k, v) for k, v in row.items() if k not in ("uuid", "diagnosis") and v)
            if cls is None:
                meta += (("control", "1"),)
            if row.get("pat_id"):
                meta += (("group", row["pat_id"]),)
            yield Record(path, self.classes.index(cls) if cls else -1, split, meta)
        if listed and not found:
            raise DatasetNotFoundError(f"{self.id}: none of the {listed} slides listed in {labels} is under {data} "
                                       f"(expected {data}/<diagnosis>/<uuid>.ndpi)")


@hookimpl
def register_datasets(register):
    register(EBRAINS(
        id="ebrains", folder="DigitalBrainTumourAtlas", classes=CLASSES, prompt_file="ebrains.json",
        title="EBRAINS Digital Brain Tumour Atlas (126 diagnoses)", url=URL, tags=TAGS,
        expected_files=3115, access=ACCESS,
    ))
    register(EBRAINS(
        id="ebrains-rare30", folder="DigitalBrainTumourAtlas", classes=RARE30, prompt_file="ebrains.json",
        title="EBRAINS rare brain tumours (30 classes, UNI/CONCH)", url=URL, tags=TAGS,
        splits=("trainval", "test"), eval_split="test", expected_files=2319, access=ACCESS,
        test_slides=rare30_test_uuids(), other_split="trainval", controls=False,
    ))
