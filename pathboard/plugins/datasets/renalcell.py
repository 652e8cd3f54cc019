"""Renal cell carcinoma textures and lymphocytes (Brummer et al., "Integrative analysis of histological
textures and lymphocyte infiltration in renal cell carcinoma using deep learning", 2023), annotated
TCGA-KIRC tiles on Zenodo, https://zenodo.org/records/7898308 (first version: records/6528599).

Official layout (github.com/vahvero/RCC_textures_and_lymphocytes_publication_image_analysis):
``tissue_classification/{cancer,normal,stroma,blood,empty,other}/*.png`` (39,458 tiles of 300 x 300 px:
11,755 cancer, 6,313 normal, 3,027 stroma incl. smooth muscle and vessels, 544 blood, 11,609 empty,
6,210 other = necrosis, torn and adipose tissue) and ``binary_lymphocytes/{immune,tumor}/*.png``
(25,095 tiles of mostly 256 x 256 px: high vs low lymphocyte density). There is no official split.

Groups: tile names start with the TCGA case (patient) of their slide (``TCGA-AK-3458_40707_15820_cancer_5163.png``,
``TCGA-B0-5077.svs_Immune cellsTile 970.png``); that case, ``TCGA-<TSS>-<participant>``, is each tile's
``group``. A name without one has no group.
"""
import re
from pathlib import Path

from pathboard.api import ImageFolderDataset, Record, hookimpl

URL = "https://zenodo.org/records/7898308"
TAGS = {"organ": "kidney", "stain": "H&E", "group": "general"}
ACCESS = (f"download the tissue texture and lymphocyte tile archives from {URL} (the record lists their md5s; none "
          "are pinned here) and unzip them under the data root so that tissue_classification/<class>/ and "
          "binary_lymphocytes/<class>/ exist")
CASE = re.compile(r"TCGA-[A-Z0-9]{2}-[A-Z0-9]{4}")


class TCGATiles(ImageFolderDataset):
    """Class folders of TCGA tiles; each tile's ``group`` is the TCGA case in its name."""

    def records(self, base: Path):
        for r in super().records(base):
            case = CASE.search(r.path.rsplit("/", 1)[-1])
            yield Record(r.path, r.label, r.split, (*r.meta, ("group", case.group(0))) if case else r.meta)


@hookimpl
def register_datasets(register):
    register(TCGATiles(
        id="renalcell", folder="tissue_classification",
        classes=["cancer", "normal", "stroma", "blood", "empty", "other"], prompt_file="renalcell.json",
        title="RenalCell tissue textures (TCGA-KIRC)", url=URL, tags=TAGS,
        expected_files=39_458, access=ACCESS,
    ))
    register(TCGATiles(
        id="renalcell-lymph", folder="binary_lymphocytes", classes=["immune", "tumor"],
        prompt_file="renalcell-lymph.json", title="RenalCell lymphocyte density (TCGA-KIRC)", url=URL, tags=TAGS,
        expected_files=25_095, access=ACCESS,
    ))
