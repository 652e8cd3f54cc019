"""LC25000 lung and colon histopathology (Borkowski et al., 2019), https://github.com/tampapath/lung_colon_image_set.

Official layout after unzipping: ``lung_colon_image_set/lung_image_sets/{lung_aca,lung_n,lung_scc}/*.jpeg``
and ``lung_colon_image_set/colon_image_sets/{colon_aca,colon_n}/*.jpeg``; 5,000 images per class.
"""
from pathboard import hookimpl
from pathboard.core.dataset import ImageFolderDataset

URL = "https://github.com/tampapath/lung_colon_image_set"


@hookimpl
def register_datasets(register):
    for organ, classes in [("lung", ["lung_aca", "lung_n", "lung_scc"]), ("colon", ["colon_aca", "colon_n"])]:
        register(ImageFolderDataset(
            id=f"lc25000-{organ}", folder=f"lung_colon_image_set/{organ}_image_sets", classes=classes,
            prompt_file=f"lc25000-{organ}.json", title=f"LC25000 ({organ})", url=URL,
            tags={"organ": organ, "stain": "H&E", "group": "general"}, expected_files=5000 * len(classes),
        ))
