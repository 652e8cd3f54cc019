from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from support.databases import make_db, make_vs_db

from pathboard.core.store import queries
from pathboard.leaderboard import frames


@pytest.fixture()
def db(tmp_path) -> Path:
    return make_db(tmp_path / "results.duckdb")


@pytest.fixture()
def long(db) -> pd.DataFrame:
    return pd.concat([queries.load_measured(db), frames.load_reported()], ignore_index=True)


@pytest.fixture()
def vs_long(tmp_path) -> pd.DataFrame:
    db = make_vs_db(tmp_path / "vs.duckdb")
    return pd.concat([queries.load_measured(db), frames.load_reported()], ignore_index=True)
