"""The plugin API's version, and the one line a plugin gets when what it returned breaks a contract.

A plugin written against an older API (a task whose ``score`` still returns a list of metrics, say) must not
fail with an ``AttributeError`` deep in pathboard that names neither the plugin nor the fix. Every hook and
method pathboard calls on a plugin's object is checked where it returns (:func:`expect`), and a wrong shape
is a :class:`ContractError` naming the object, its distribution and version, what it returned, what is
expected since which API version, and the section of ``docs/writing-a-plugin.md`` that says how::

    task labkit-centroid (pathboard-labkit 0.1.0): score() returned list; since plugin API 2 it returns
    TaskResult (docs/writing-a-plugin.md#tasks)
"""
from __future__ import annotations

from pathboard.core.errors import PathboardError

#: the plugin API's version: 1 the first hooks; 2 tasks return a TaskResult, declare options and inputs
#: (one-way scoring); 3 the built-ins' library code is public (splits, few-shot classifiers, slide tasks),
#: and contract breaks are named in one line; 4 Metric says what its interval resampled (units, undefined);
#: 5 protocol packs (``register_protocols``); 6 slide models (``SlideModelSpec``, ``CellContext.slides``,
#: ``Task.slide_level``); 7 ``Dataset.near_duplicates`` (groups pathboard finds from the images the embedding decodes);
#: 8 ``abmil_fit`` and ``abmil_classify`` (a cell's ABMIL models read each test bag once); 9 ``CellContext.device``
#: (the run's device, for a task's own arithmetic) and ``abmil_classify(..., device)``
API_VERSION = 9
DOCS = "docs/writing-a-plugin.md"


class ContractError(PathboardError):
    """A plugin returned something of the wrong shape: one line naming the plugin and the fix."""


def describe(obj, kind: str) -> str:
    """``task labkit-centroid (pathboard-labkit 0.1.0)``: the object, and the distribution that registered
    it (``obj.plugin``, ``obj.plugin_version``, set when it was registered)."""
    source = str(getattr(obj, "plugin", "") or "").split(":", 1)[0]
    version = getattr(obj, "plugin_version", "") or ""
    origin = f" ({source}{' ' + version if version else ''})" if source else ""
    return f"{kind} {getattr(obj, 'id', type(obj).__name__)}{origin}"


def _name(value) -> str:
    return "None" if value is None else type(value).__name__


def broken(obj, kind: str, call: str, value, expected: str, since: int, section: str) -> ContractError:
    """The one line for ``obj``'s ``call`` having returned ``value`` instead of ``expected``."""
    return ContractError(f"{describe(obj, kind)}: {call} returned {_name(value)}; since plugin API {since} it returns "
                         f"{expected} ({DOCS}#{section})")


def expect(value, types, obj, kind: str, call: str, since: int, section: str, expected: str | None = None):
    """``value`` when it is an instance of ``types``, else :func:`broken`'s error."""
    if not isinstance(value, types):
        names = expected or " or ".join(t.__name__ if t is not type(None) else "None"
                                        for t in (types if isinstance(types, tuple) else (types,)))
        raise broken(obj, kind, call, value, names, since, section)
    return value
