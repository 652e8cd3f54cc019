"""Slide encoders and patch models in one Overview table, each row saying how it makes one score per slide; the
Models view says which patch encoder each slide encoder reads."""
import re

import pytest
from support.browser import serve, view
from support.databases import make_slide_db

pytestmark = pytest.mark.browser


@pytest.fixture()
def url(tmp_path):
    yield from serve(make_slide_db(tmp_path / "results.duckdb"))


def test_slide_and_patch_models_in_one_table_with_their_pooling(url):
    with view(url, "task=zeroshot-wsi&metric=balanced_accuracy", wait_for="table.pathboard-leaderboard",
              name="slide-models") as page:
        html = page.content()
    assert "Traceback" not in html
    table = re.search(r'<table class="pathboard-leaderboard">.*?</table>', html, flags=re.S)[0]
    assert "<th>pooling</th>" in table
    rows = {m: p for m, p in re.findall(r'<td class="model">([\w.-]+)</td><td>measured</td>'
                                        r'<td class="pooling">([^<]*)</td>', table)}
    assert rows == {"titan": "slide encoder over conch-v1.5", "prism": "slide encoder over virchow",
                    "conch": "MI-Zero top-50", "plip": "MI-Zero top-50"}
    order = re.findall(r'<td class="model">([\w.-]+)</td>', table)
    assert order[:4] == ["titan", "prism", "conch", "plip"]  # one ranking, best first
    assert "<b>0.710 [0.62, 0.80]</b>" in table

    with view(url, "view=Models", wait_for="text=Model cards", name="slide-models-cards") as page:
        models = page.content()
    assert "titan reads conch-v1.5 (20x, 512 px)" in models and "prism reads virchow (20x, 224 px)" in models
