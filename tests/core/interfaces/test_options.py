"""Task options: parsed and checked in one line each, resolved per task, stored as canonical JSON."""
import pytest

from pathboard.core.errors import PathboardError
from pathboard.core.interfaces.options import Option, options_json, parse_assignments, protocol_of, values_for
from pathboard.core.interfaces.task import TILING_OPTIONS, SlideTask


def test_parse_checks_type_choices_bounds_and_lists():
    methods = Option("methods", str, ("a", "b"), "which", choices=("a", "b"), multiple=True)
    assert methods.parse("b, a,b") == ("b", "a")  # duplicates dropped, order kept
    with pytest.raises(PathboardError, match=r"option t\.methods='c': unknown value 'c'; choose from a, b"):
        methods.parse("c", "t")
    k = Option("k", int, 2, "how many", min=1, max=4)
    assert k.parse("3") == 3 and k.parse(3.0) == 3
    for bad, why in (("x", "expected int"), (2.5, "expected int"), ("9", r"must be in \[1, 4\]")):
        with pytest.raises(PathboardError, match=why):
            k.parse(bad)
    flag = Option("flag", bool, False, "on or off")
    assert flag.parse("yes") is True and flag.parse("off") is False
    with pytest.raises(PathboardError, match="expected bool"):
        flag.parse("maybe")


def test_describe_shows_type_default_choices_and_bounds():
    assert Option("methods", str, ("a", "b"), "which", choices=("a", "b"), multiple=True).describe() == \
        "methods (list of str; default a,b; any of a, b): which"
    assert Option("mode", str, "x", "one", choices=("x", "y")).describe() == "mode (str; default x; one of x, y): one"
    assert Option("k", int, 2, "how many", min=1).describe() == "k (int; default 2; 1..): how many"
    assert TILING_OPTIONS[0].describe() == "mpp (float; default 0.5; 0.05..20): tile at this resolution (µm per pixel)"


class Tiled(SlideTask):
    id = "tiled"
    title = "a slide task"

    def score(self, ctx):
        raise NotImplementedError


def test_values_reach_each_task_that_declares_them_qualified_names_win():
    tiled, other = Tiled(), Tiled()
    other.id = "other"
    given = parse_assignments(["mpp=1.0", "tiled.tile_size=448"])
    values = values_for([tiled, other], given, {"tiled": tiled, "other": other})
    assert values == {"tiled": {"mpp": "1.0", "tile_size": "448"}, "other": {"mpp": "1.0"}}
    configured = tiled.configure(values["tiled"])
    assert configured.tiling.size == 448 and configured.tiling.target_mpp == 1.0 and tiled.tiling.size == 224
    with pytest.raises(PathboardError, match="option"):
        values_for([tiled], {"mppp": "1"}, {"tiled": tiled})
    with pytest.raises(PathboardError, match=r"write NAME=VALUE or TASK.NAME=VALUE"):
        parse_assignments(["mpp"])


def test_stored_json_and_protocol_hash():
    blob, digest = options_json({"b": (1, 2), "a": 0.5})
    assert blob == '{"a": 0.5, "b": [1, 2]}' and len(digest) == 64
    defaults = {"mpp": 0.5}
    recorded, same, default = protocol_of("p", False, {"mpp": 0.5}, defaults, {"tiling": 1}, "manifest-1")
    _, other_manifest, _ = protocol_of("p", False, {"mpp": 0.5}, defaults, {"tiling": 1}, "manifest-2")
    _, custom, custom_default = protocol_of("p", True, {"mpp": 0.5}, defaults, {"tiling": 1}, "manifest-1")
    _, finer, finer_default = protocol_of("p", False, {"mpp": 0.25}, defaults, {"tiling": 1}, "manifest-1")
    assert default and same == other_manifest  # the manifest is recorded, not compared
    assert not custom_default and not finer_default and len({same, custom, finer}) == 3
    assert '"manifest": "manifest-1"' in recorded
