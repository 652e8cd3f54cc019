"""DHMC LUAD, the Dartmouth Lung Cancer Histology Dataset (Wei et al., "Pathologist-level classification
of histologic patterns on resected lung adenocarcinoma slides with deep neural networks", Scientific
Reports 2019), https://bmirds.github.io/LungCancer/.

143 H&E whole-slide images of resected lung adenocarcinoma (the study's held-out test set, released
after a data request form), each labelled with its predominant growth pattern by the consensus of
three Dartmouth-Hitchcock pathologists. Official layout of the release: the slides ``DHMC_0001.tif``
... ``DHMC_0143.tif`` and the label file ``MetaData_Release_1.0.csv`` whose column ``File Name`` names
the slide and ``Class`` gives the pattern (``lepidic``, ``acinar``, ``papillary``, ``micropapillary``,
``solid``); other columns are kept as item metadata. pathboard's layout:
``DartmouthLungCancerHistologyDataset/MetaData_Release_1.0.csv`` with the slides beside it (or in any
sub-folder of it). All 143 slides are the released test set. The patterns are read as nominal classes
(not ordinal); the paper's and CONCH's headline metric is Cohen's kappa (``cohen_kappa``).

Groups: the label file names no patient, so each slide is its own ``group`` (its file stem, ``DHMC_0001``);
a column naming the patient (its header containing "patient"), if a copy has one, is used instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pathboard.api import DatasetNotFoundError, Record, SlideDataset, hookimpl, layout_error
from pathboard.plugins.datasets._common import read_table, slide_index

CLASSES = ["lepidic", "acinar", "papillary", "micropapillary", "solid"]
URL = "https://bmirds.github.io/LungCancer/"
LABELS = "MetaData_Release_1.0.csv"
FILE, CLASS = "File Name", "Class"
ACCESS = (
    f"registration: fill in the data request form on {URL} (BMIRDS, Dartmouth; research use under the "
    "dataset's terms); the emailed download link gives the 143 slides DHMC_0001.tif ... DHMC_0143.tif and "
    f"{LABELS}: put them all in <data root>/DartmouthLungCancerHistologyDataset/ (no checksums are published)"
)


@dataclass
class DHMCLUAD(SlideDataset):
    #: the metric the source papers lead with (the leaderboard default is weighted F1)
    headline_metric: str = "cohen_kappa"

    @property
    def layout(self) -> str:
        return f"{self.folder}/{LABELS} ({FILE}, {CLASS}) + {self.folder}/DHMC_NNNN.tif"

    def records(self, base: Path):
        labels = base / LABELS
        if not labels.is_file():
            raise layout_error(self.id, base, self.layout, f"{labels} not found")
        rows = read_table(self.id, labels, (FILE, CLASS), f"{FILE!r} and {CLASS!r}")
        index = slide_index(base)
        found = 0
        for row in rows:
            name, cls = row[FILE], row[CLASS].lower()
            if cls not in CLASSES:
                raise DatasetNotFoundError(f"{self.id}: {labels}: {name} has {CLASS} {row[CLASS]!r}; "
                                           f"expected one of {', '.join(CLASSES)}")
            path = index.get(name) or index.get(f"{name}.tif")  # tolerate a name without its extension
            if path:
                found += 1
                meta = tuple((k, v) for k, v in row.items() if k not in (FILE, CLASS) and v)
                patient = next((v for k, v in meta if "patient" in k.lower()), "")
                yield Record(path, CLASSES.index(cls), "test", (*meta, ("group", patient or Path(path).stem)))
        if rows and not found:
            raise DatasetNotFoundError(f"{self.id}: none of the {len(rows)} slides listed in {labels} "
                                       f"(e.g. {rows[0][FILE]}) is under {base}")


@hookimpl
def register_datasets(register):
    register(DHMCLUAD(
        id="dhmc-luad", folder="DartmouthLungCancerHistologyDataset", classes=CLASSES, prompt_file="dhmc-luad.json",
        title="DHMC LUAD (lung adenocarcinoma growth patterns)", url=URL,
        tags={"organ": "lung", "stain": "H&E", "group": "general"},
        splits=("test",), eval_split="test", expected_files=143, access=ACCESS,
    ))
