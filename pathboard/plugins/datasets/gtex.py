"""GTEx histology whole-slide images (GTEx Consortium), https://gtexportal.org/home/histologyPage.

Each GTEx tissue sample has one H&E slide, served by the NCI Biospecimen Research Database as
``https://brd.nci.nih.gov/brd/imagedownload/<Tissue Sample ID>`` and saved as ``<Tissue Sample ID>.svs``
(e.g. ``GTEX-1117F-0126.svs``). The tissue site comes from the histology page's table export
``GTEx Portal.csv`` (``Tissue Sample ID,Tissue,Subject ID,Sex,Age Bracket,Hardy Scale,Pathology
Categories,Pathology Notes``; ``Tissue`` e.g. "Cervix - Ectocervix") or from the release's sample
annotation file ``GTEx_Analysis_v*_Annotations_SampleAttributesDS.txt`` (tab-separated; ``SAMPID``
``GTEX-1117F-0126-SM-...`` whose first three fields are the tissue sample ID, ``SMTSD`` the site).
pathboard's layout: ``GTEx/<Tissue Sample ID>.svs`` next to either table; ``gtex-cervix`` takes the
Ectocervix and Endocervix slides, labelled ``ectocervix`` or ``endocervix`` by their site (kept as item
metadata with the ``subject``, the donor ``GTEX-XXXXX``). Groups: each slide's ``group`` is its donor (the
``subject``), so donor-disjoint splits keep a donor's slides together, as one donor often gives both sites.

Verified and assumed: written without internet access, so nothing here was checked against a live download.
The table headers above and the site names "Cervix - Ectocervix" / "Cervix - Endocervix" (GTEx v8 ``SMTSD``
values, also the portal's ``Tissue`` column) are as the GTEx portal and the v8 annotation documentation give
them; the BRD download URL and the saved file name are assumed to stay as described.
"""
from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pathboard.api import Record, SlideDataset, hookimpl, layout_error

URL = "https://gtexportal.org/home/histologyPage"
PORTAL_TABLE = "GTEx Portal*.csv"
SAMPLE_ATTRIBUTES = "GTEx_Analysis_*_Annotations_SampleAttributesDS.txt"
#: GTEx tissue site (``SMTSD``, the portal's "Tissue") -> class of gtex-cervix
CERVIX = {"Cervix - Ectocervix": "ectocervix", "Cervix - Endocervix": "endocervix"}
ACCESS = (
    f"open {URL}, select Tissue = Cervix - Ectocervix and Cervix - Endocervix, download the table "
    "(saved as 'GTEx Portal.csv') into <data root>/GTEx/; then fetch every slide: "
    "`cd <data root>/GTEx && tail -n +2 'GTEx Portal.csv' | cut -d, -f1 | tr -d '\"' | while read id; do "
    "curl -L -o \"$id.svs\" \"https://brd.nci.nih.gov/brd/imagedownload/$id\"; done`"
)


def tissue_sites(base: Path) -> dict[str, str]:
    """Tissue Sample ID -> tissue site, from the portal table(s) or the sample annotation file."""
    sites: dict[str, str] = {}
    for path in sorted(base.glob(SAMPLE_ATTRIBUTES)):
        with open(path, newline="", encoding="utf-8-sig") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                parts = (row.get("SAMPID") or "").split("-")
                if len(parts) >= 3 and row.get("SMTSD"):
                    sites.setdefault("-".join(parts[:3]), row["SMTSD"].strip())
    for path in sorted(base.glob(PORTAL_TABLE)):  # the histology table is the slides' own record: it wins
        with open(path, newline="", encoding="utf-8-sig") as fh:
            for row in csv.DictReader(fh):
                if row.get("Tissue Sample ID") and row.get("Tissue"):
                    sites[row["Tissue Sample ID"].strip()] = row["Tissue"].strip()
    return sites


@dataclass
class GTExSlides(SlideDataset):
    #: tissue site (GTEx SMTSD / portal "Tissue" value) this set takes -> its class
    sites: dict = field(default_factory=dict)

    @property
    def layout(self) -> str:
        return f"{self.folder}/{{GTEX-*.svs, 'GTEx Portal.csv' or {SAMPLE_ATTRIBUTES}}}"

    def records(self, base: Path) -> Iterable[Record]:
        sites = tissue_sites(base)
        if not sites:
            raise layout_error(self.id, base, f"{base}/GTEx Portal.csv (histology page export) or "
                                              f"{base}/{SAMPLE_ATTRIBUTES}", "no tissue-site table")
        with os.scandir(base) as entries:
            slides = sorted(e.name for e in entries if e.is_file() and e.name.startswith("GTEX-")
                            and e.name.lower().endswith(".svs"))
        for name in slides:
            site = sites.get(name[:-4])
            if site in self.sites:
                subject = "-".join(name.split("-")[:2])
                yield Record(name, self.classes.index(self.sites[site]), None,
                             (("site", site), ("subject", subject), ("group", subject)))


@hookimpl
def register_datasets(register):
    register(GTExSlides(id="gtex-cervix", folder="GTEx", title="GTEx cervix (ectocervix, endocervix)", url=URL,
                        sites=CERVIX, classes=list(CERVIX.values()), prompt_file="gtex-cervix.json", access=ACCESS,
                        tags={"organ": "cervix", "stain": "H&E", "group": "cervix"}))
