"""Stage timing: a nested stage is counted once, in itself; the summary lists stages in run order."""
from __future__ import annotations

import time

import pytest

from pathboard.core import timing


def test_a_nested_stage_is_counted_in_itself_only():
    timing.take()
    with timing.stage("image embedding"):
        time.sleep(0.02)
        with timing.stage("model load"):
            time.sleep(0.05)
    seconds = timing.take()
    assert 0.045 <= seconds["model load"] < 0.2
    assert 0.015 <= seconds["image embedding"] < 0.045  # the load's 0.05 s is not counted twice
    assert timing.take() == {}


def test_lines_follow_the_run_order_and_sum_to_the_whole():
    lines = timing.lines({"rankings": 1.0, "model load": 3.0, "scoring": 0.0, "grouping": 6.0})
    assert [line.split()[1] for line in lines] == ["grouping", "model", "rankings"]  # 0 s: no line
    assert lines[0].endswith("6.00 s  ( 60%)") and lines[2].endswith("1.00 s  ( 10%)")


def test_an_unknown_stage_is_refused():
    with pytest.raises(ValueError, match="unknown stage 'embed'"):
        with timing.stage("embed"):
            pass


def test_worker_stages_add_to_the_driver_s():
    timing.take()
    timing.add({"scoring": 2.0})
    timing.add({"scoring": 1.0, "model load": 0.5})
    assert timing.take() == {"scoring": 3.0, "model load": 0.5}
