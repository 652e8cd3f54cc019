"""LC25000 lung and colon histopathology (Borkowski et al., 2019), https://github.com/tampapath/lung_colon_image_set.

Official layout after unzipping: ``lung_colon_image_set/lung_image_sets/{lung_aca,lung_n,lung_scc}/*.jpeg``
and ``lung_colon_image_set/colon_image_sets/{colon_aca,colon_n}/*.jpeg``; 5,000 images per class.

Groups: LC25000 was made by augmenting 750 lung and 500 colon originals (250 a class) to 5,000 images a
class with rotations of up to 25 degrees and horizontal and vertical flips, so a class folder holds about
20 rotated or flipped copies of each original. The release names neither the originals nor the patients.
Each item's ``group`` is its near-duplicate group (:func:`pathboard.core.science.grouping.near_duplicate_groups`,
named by its first path): images that are rotated, flipped or zoomed copies of one another, found by a
perceptual hash searched over rotations and zooms, within each class folder (copies never cross classes).
Computed once per copy of the data (seconds for the 600-image sample, minutes for the full 25,000) and
cached. Images of different originals from one patient cannot be told apart, so the groups are clusters of
copies, not patients.
"""
from pathlib import Path

from pathboard.api import ImageFolderDataset, Record, hookimpl, near_duplicate_groups

URL = "https://github.com/tampapath/lung_colon_image_set"


class LC25000(ImageFolderDataset):
    """Class folders of JPEGs; each item's ``group`` is its near-duplicate cluster within its class."""

    def records(self, base: Path):
        records = list(super().records(base))
        by_class: dict[str, list[str]] = {}
        for r in records:
            by_class.setdefault(r.path.split("/", 1)[0], []).append(r.path)
        groups: dict[str, str] = {}
        for paths in by_class.values():
            groups.update(near_duplicate_groups(base, paths, what=self.id))
        for r in records:
            yield Record(r.path, r.label, r.split, (*r.meta, ("group", groups[r.path])))


@hookimpl
def register_datasets(register):
    for organ, classes in [("lung", ["lung_aca", "lung_n", "lung_scc"]), ("colon", ["colon_aca", "colon_n"])]:
        register(LC25000(
            id=f"lc25000-{organ}", folder=f"lung_colon_image_set/{organ}_image_sets", classes=classes,
            prompt_file=f"lc25000-{organ}.json", title=f"LC25000 ({organ})", url=URL,
            tags={"organ": organ, "stain": "H&E", "group": "general"}, expected_files=5000 * len(classes),
        ))
