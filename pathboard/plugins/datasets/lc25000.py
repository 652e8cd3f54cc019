"""LC25000 lung and colon histopathology (Borkowski et al., 2019), https://github.com/tampapath/lung_colon_image_set.

Official layout after unzipping: ``lung_colon_image_set/lung_image_sets/{lung_aca,lung_n,lung_scc}/*.jpeg``
and ``lung_colon_image_set/colon_image_sets/{colon_aca,colon_n}/*.jpeg``; 5,000 images per class.

Groups: LC25000 was made by augmenting 750 lung and 500 colon originals (250 a class) to 5,000 images a
class with rotations of up to 25 degrees and horizontal and vertical flips, so a class folder holds about
20 rotated or flipped copies of each original. The release names neither the originals nor the patients.
Each item's ``group`` is its near-duplicate group (``near_duplicates=True``: pathboard finds them with
:func:`pathboard.core.science.grouping.group_manifest`, named by the group's first path): images that are rotated,
flipped or zoomed copies of one another, found by a perceptual hash searched over rotations and zooms, within each
class (copies never cross classes). They are found once per copy of the data, before its first cell is scored,
from the images the first model's embedding decoded (seconds for the 600-image sample, about 6 s for 15,000 images
on 2 cores), and cached. Images of different originals from one patient cannot be told apart, so the groups are
clusters of copies, not patients.
"""
from pathboard.api import ImageFolderDataset, hookimpl

URL = "https://github.com/tampapath/lung_colon_image_set"


@hookimpl
def register_datasets(register):
    for organ, classes in [("lung", ["lung_aca", "lung_n", "lung_scc"]), ("colon", ["colon_aca", "colon_n"])]:
        register(ImageFolderDataset(
            id=f"lc25000-{organ}", folder=f"lung_colon_image_set/{organ}_image_sets", classes=classes,
            prompt_file=f"lc25000-{organ}.json", title=f"LC25000 ({organ})", url=URL,
            tags={"organ": organ, "stain": "H&E", "group": "general"}, expected_files=5000 * len(classes),
            near_duplicates=True,
        ))
