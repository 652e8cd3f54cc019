"""The Models and Cervix views in headless Chromium."""
from __future__ import annotations

import pytest
from support.browser import view

pytestmark = pytest.mark.browser


def test_models_and_cervix_views(url):
    with view(url, "view=Models", wait_for="[data-testid=stTable]", name="models") as page:  # the cost table
        html = page.content()
        assert "Traceback" not in html and "quiltnet-b32" in html and "plip" in html
    with view(url, "view=Cervix+benchmark", wait_for="text=Cervix benchmark", name="cervix") as page:
        assert "No cervix results yet" in page.content()
