"""What the CLI prints of a number: its interval, flagged when it is not an ordinary 95% CI."""
from __future__ import annotations

from pathboard import cli
from pathboard.core.science.metrics import Metric


def test_an_interval_on_too_few_units_or_undefined_resamples_is_flagged():
    assert cli._with_interval(Metric("balanced_accuracy", 0.8, 0.7, 0.9, 300, units=300)) == "0.800 [0.700, 0.900]"
    assert cli._with_interval(Metric("balanced_accuracy", 0.5, 0.0, 1.0, 2, units=2)) == \
        "0.500 [0.000, 1.000]†(over 2 unit(s) only)"
    assert cli._with_interval(Metric("recall/c", 0.5, 0.0, 1.0, 30, units=30, undefined=0.106)) == \
        "0.500 [0.000, 1.000]†(undefined in 11% of resamples)"
    assert cli._with_interval(Metric("x", 0.5, float("nan"), float("nan"), 30, q1=0.4, q3=0.6)) == \
        "0.500 (IQR 0.400–0.600)"


def test_cache_dir_is_the_cache_of_everything_the_run_caches(tmp_path, monkeypatch):
    """Near-duplicate groups and weight hashes read paths.cache_root(): --cache-dir must move them too, or a
    cluster sharing one --cache-dir groups LC25000 again on every node."""
    from click.testing import CliRunner

    from pathboard.core.paths import cache_root

    monkeypatch.setenv("PATHBOARD_CACHE", str(tmp_path / "default"))
    CliRunner().invoke(cli.cli, ["run", "--cache-dir", str(tmp_path / "shared"), "--models", "nope",
                                 "--datasets", "nope", "--db", str(tmp_path / "pb.duckdb")])
    assert cache_root() == tmp_path / "shared"


def test_list_models_details_say_what_a_slide_model_reads():
    from click.testing import CliRunner

    out = CliRunner().invoke(cli.cli, ["list", "models", "--details"])
    assert out.exit_code == 0, out.output
    titan = out.output.split("\ntitan ", 1)[1].split("\n")
    assert titan[1].split() == ["reads", "conch-v1.5", "tile", "features", "at", "20x,", "512", "px"]
    assert "reads" not in out.output.split("\nplip ", 1)[1].split("\n")[1]  # a patch model reads pixels
