"""A dataset in its official layout, with prompts that reuse pathboard's packaged CONCH templates."""
from pathlib import Path

from pathboard.api import ImageFolderDataset, hookimpl


@hookimpl
def register_datasets(register):
    register(ImageFolderDataset(
        id="pbfull-lung", folder="lung_colon_image_set/lung_image_sets", classes=["lung_aca", "lung_n", "lung_scc"],
        prompt_file=str(Path(__file__).with_name("prompts.json")), title="LC25000 lung (pbfull's prompts)",
        url="https://github.com/tampapath/lung_colon_image_set", tags={"organ": "lung", "group": "pbfull"},
        access="download LC25000 and unzip it into <data root>/lung_colon_image_set/",
        near_duplicates=True,  # its images are rotated and flipped copies: pathboard groups them
    ))
