"""A tiny CLIP trained here on real LC25000 patches must zero-shot held-out patches well above chance.

A random model cannot catch label-order, prompt-order or normalisation bugs; a trained one does.
"""
import duckdb
import pytest
from support.helpers import pathboard
from support.trained import TRAIN_PER_CLASS

from pathboard.core.engine import plugins

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


def test_trained_tiny_clip_zero_shots_held_out_real_patches(tmp_path, trained_lung, fresh_cache):
    # the session's tiny CLIP, trained for 120 steps on the first patches of each class with captions written
    # from the class names (exactly the dataset's single-mode prompts); the held-out patches were never seen
    lung = plugins.get("dataset", "lc25000-lung")
    weights, held_out_files = trained_lung
    held_out = tmp_path / "data"
    for c in lung.classes:
        (held_out / lung.folder / c).mkdir(parents=True)
        for f in held_out_files[c]:
            (held_out / lung.folder / c / f.name).symlink_to(f)
    db = tmp_path / "pb.duckdb"
    out = pathboard("run", "--models", "quiltnet-b32", "--weights", f"quiltnet-b32={weights}",
                    "--datasets", "lc25000-lung", "--data-root", held_out, "--db", db, "--tasks", "zeroshot")
    assert out.returncode == 0, out.stderr
    rows = dict(duckdb.connect(str(db), read_only=True).execute(
        "SELECT prompt_mode, value FROM leaderboard WHERE metric = 'balanced_accuracy'").fetchall())
    n = duckdb.connect(str(db), read_only=True).execute("SELECT DISTINCT n FROM leaderboard").fetchall()
    assert n == [(3 * (200 - TRAIN_PER_CLASS),)]
    print(f"held-out balanced accuracy {rows}")
    assert rows["single"] > 0.6, rows  # chance is 1/3
