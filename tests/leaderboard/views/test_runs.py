"""The Runs view in headless Chromium, and the numbers of one run."""
from __future__ import annotations

import pytest
from support.browser import choose, shown_table, until, view

from pathboard.core.store import queries

pytestmark = pytest.mark.browser


def test_runs_view_and_filtering_by_run(url, real_db):
    db, _ = real_db
    with view(url, "view=Runs", wait_for="text=Run details", name="runs") as page:
        html = page.content()
        assert "Traceback" not in html
        code = page.get_by_test_id("stCode")
        assert "--tasks robustness" in code.inner_text()  # the newest run's command
        newest, _packed, older = list(queries.load_runs(db)["run_id"])
        choose(page, "Run details", older)
        until(page, lambda p: "--fewshot-methods prototype,linear-probe" in p.get_by_test_id("stCode").inner_text(),
              "the older run's command")
        html = page.content()
        assert "What embedding cost" in html and "Packages" in html and "transformers" in html
        cost = page.locator("table").filter(has_text="peak memory").inner_text()
        assert " GiB" in cost and "None" not in cost and "peak_memory_bytes" not in cost  # human units
        assert "Deploy" not in html  # the viewer's toolbar: no Deploy button
    with view(url, f"run={older}", wait_for="table.pathboard-leaderboard", name="run-filter") as page:
        assert {"plip", "quiltnet-b32"} <= set(shown_table(page.content()))  # the first run scored zero-shot
        choose(page, "Run", newest)  # the robustness run: no zero-shot headline of its own
        until(page, lambda p: all(label.endswith("(reported)") for label in shown_table(p.content())),
              "only published rows under the robustness run")
