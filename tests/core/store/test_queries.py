"""The reads of the results database: a missing or foreign file is one line, an empty one no rows."""
from __future__ import annotations

import pytest

from pathboard.core.errors import PathboardError
from pathboard.core.store import queries
from pathboard.core.store.database import Store


def test_load_measured_errors_and_empty(tmp_path):
    with pytest.raises(PathboardError):
        queries.load_measured(tmp_path / "missing.duckdb")
    store = Store(tmp_path / "empty.duckdb")
    store.start_run(command="test", device="cpu", precision="fp32")
    assert queries.load_measured(store.path).empty
