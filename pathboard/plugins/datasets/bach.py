"""BACH, the ICIAR 2018 Grand Challenge on BreAst Cancer Histology images (Aresta et al., Medical Image
Analysis 2019), https://iciar2018-challenge.grand-challenge.org/, data on https://zenodo.org/records/3632035.

Official layout of ``ICIAR2018_BACH_Challenge.zip`` (the labelled training set):
``ICIAR2018_BACH_Challenge/Photos/{Normal,Benign,InSitu,Invasive}/*.tif`` (400 microscopy images,
2048 x 1536 px, 100 per class) and ``ICIAR2018_BACH_Challenge/WSI/*.svs`` (30 whole-slide images), with
Aperio ImageScope XML annotations ``WSI/<slide>.xml`` (A01-A10) beside the annotated slides:
``Annotations/Annotation/Regions/Region`` elements, each labelled by its ``Attributes/Attribute@Value``
(or ``Region@Text``: "Benign", "Carcinoma in situ", "Invasive carcinoma") with a polygon of
``Vertices/Vertex@X,@Y`` in level-0 pixels; unlabelled tissue is normal. The test set
(``ICIAR2018_BACH_Challenge_TestDataset.zip``) has no public labels.

Groups: none. The microscopy images are named by class and number only (``n001.tif``, ``iv042.tif``) and the
release gives no patient or slide of any image, so items carry no ``group`` and few-shot splits them image
by image: images of one patient may fall on both sides.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from pathboard.api import (
    Annotation,
    DatasetNotFoundError,
    Download,
    ImageFolderDataset,
    Record,
    SlideDataset,
    hookimpl,
    layout_error,
)

CLASSES = ["Normal", "Benign", "InSitu", "Invasive"]
TOP = "ICIAR2018_BACH_Challenge"
URL = "https://iciar2018-challenge.grand-challenge.org/"
TAGS = {"organ": "breast", "stain": "H&E", "group": "general"}
# md5 as published on the Zenodo record (and pinned by kaiko-ai/eva's BACH loader)
DOWNLOAD = Download("https://zenodo.org/records/3632035/files/ICIAR2018_BACH_Challenge.zip?download=1",
                    "ICIAR2018_BACH_Challenge.zip", "md5:8ae1801334aa943c44627c1eef3631b2")
SLIDE_EXTENSIONS = (".svs", ".tif", ".tiff")


def region_class(text: str) -> str:
    """The patch class a region label names ("Carcinoma in situ" -> "InSitu"); unknown labels unchanged."""
    t = text.lower()
    for key, cls in (("situ", "InSitu"), ("invasive", "Invasive"), ("benign", "Benign"), ("normal", "Normal")):
        if key in t:
            return cls
    return text.strip()


def parse_xml(path: Path) -> list[Annotation]:
    """The labelled polygons of an ImageScope annotation file, in file order."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise DatasetNotFoundError(f"bach-wsi: cannot parse {path}: {exc}") from None
    out = []
    for region in root.iter("Region"):
        values = [a.get("Value", "").strip() for a in region.iterfind("Attributes/Attribute")]
        label = next((v for v in values if v), region.get("Text", "").strip())
        polygon = tuple((float(v.get("X")), float(v.get("Y"))) for v in region.iter("Vertex"))
        if label and len(polygon) >= 3:
            out.append(Annotation(region_class(label), polygon))
    return out


class BACHSlides(SlideDataset):
    @property
    def layout(self) -> str:
        return f"{self.folder}/*.svs (+ <slide>.xml ImageScope annotations)"

    def records(self, base: Path):
        slides = sorted(p.name for p in base.iterdir() if p.is_file() and p.suffix.lower() in SLIDE_EXTENSIONS)
        if not slides:
            raise layout_error(self.id, base, self.layout, "no slides")
        yield from (Record(name, -1, "train") for name in slides)

    def annotations(self, base: Path, path: str) -> list[Annotation]:
        xml = (base / path).with_suffix(".xml")
        return parse_xml(xml) if xml.is_file() else []


@hookimpl
def register_datasets(register):
    register(ImageFolderDataset(
        id="bach", folder=f"{TOP}/Photos", classes=CLASSES, prompt_file="bach.json",
        title="BACH microscopy images", url=URL, tags=TAGS, expected_files=400,
        split="train", splits=("train",), downloads=(DOWNLOAD,),
    ))
    register(BACHSlides(
        id="bach-wsi", folder=f"{TOP}/WSI", classes=CLASSES, prompt_file="bach.json",
        title="BACH whole-slide images", url=URL, tags=TAGS, expected_files=30,
        splits=("train",), downloads=(DOWNLOAD,),
        opt_out={task: "BACH slides carry region annotations only, no slide-level label"
                 for task in ("zeroshot-wsi", "fewshot-wsi", "slide-retrieval")},
    ))
