"""Load every plugin from the ``pathboard`` entry-point group, built-ins included.

Each registered object gets ``.plugin`` (``<distribution>:<entry point>``) and ``.plugin_version`` (the
distribution's version), so that every line about it can name where it comes from. What a hook registers is
checked: an object of the wrong kind is refused with one line naming the plugin and the fix, and the plugin's
other objects and every other plugin keep working.
"""
from __future__ import annotations

import functools
import importlib.metadata
import sys

import pluggy

from pathboard.core.errors import unknown_id
from pathboard.core.interfaces import hookspecs
from pathboard.core.interfaces.contracts import DOCS
from pathboard.core.interfaces.dataset import Dataset, DatasetFactory
from pathboard.core.interfaces.model import ModelSpec
from pathboard.core.interfaces.protocols import ProtocolPack
from pathboard.core.interfaces.task import Task

GROUP = "pathboard"
KINDS = {"model": "register_models", "dataset": "register_datasets", "task": "register_tasks",
         "factory": "register_dataset_factories", "protocol": "register_protocols"}
#: what each hook's ``register`` takes, since which plugin API version, and where the docs say how
EXPECTED = {"model": (ModelSpec, 1, "models"), "dataset": (Dataset, 1, "datasets"), "task": (Task, 2, "tasks"),
            "factory": (DatasetFactory, 1, "datasets"), "protocol": (ProtocolPack, 5, "protocols")}


@functools.cache
def _entry_points() -> list[tuple[importlib.metadata.EntryPoint, str, str]]:
    """(entry point, distribution name, its version) of every ``pathboard`` entry point. Each distribution's
    metadata is parsed once: ``ep.dist.name`` parses it again on every call (~3 ms for pathboard's own, whose
    metadata holds the README), and a run asked for it twice per entry point."""
    found, parsed = [], {}
    for ep in importlib.metadata.entry_points(group=GROUP):
        if ep.dist is None:
            found.append((ep, "?", ""))
            continue
        if id(ep.dist) not in parsed:  # the entry points of one distribution share its object
            meta = ep.dist.metadata
            parsed[id(ep.dist)] = (meta["Name"], meta["Version"])
        found.append((ep, *parsed[id(ep.dist)]))
    return found


@functools.cache
def plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    for ep, dist, _ in _entry_points():
        try:
            pm.register(ep.load(), name=f"{dist}:{ep.name}")
        except Exception as exc:  # one broken plugin must not take the others down
            print(f"warning: plugin {ep.name} from {dist} failed to load: {exc}", file=sys.stderr)
    return pm


@functools.cache
def _versions() -> dict[str, str]:
    """Distribution name -> version, of every distribution with a ``pathboard`` entry point."""
    return {dist: version for _, dist, version in _entry_points() if dist != "?"}


@functools.cache
def registry(kind: str) -> dict:
    """All registered objects of one kind, by id. Each object gets ``.plugin`` naming its source and
    ``.plugin_version`` its distribution's version."""
    items: dict = {}
    cls, since, section = EXPECTED[kind]
    for impl in getattr(plugin_manager().hook, KINDS[kind]).get_hookimpls():
        dist = impl.plugin_name.split(":", 1)[0]
        origin = f"{dist} {_versions().get(dist, '')}".strip()

        def register(obj, _plugin=impl.plugin_name, _origin=origin):
            if not isinstance(obj, cls):
                print(f"warning: {KINDS[kind]} of {_plugin} ({_origin}) registered a {type(obj).__name__}, ignored; "
                      f"since plugin API {since} it registers a {cls.__name__} ({DOCS}#{section})", file=sys.stderr)
                return
            if obj.id in items:
                print(f"warning: {kind} {obj.id!r} from {_plugin} ignored: already registered by "
                      f"{items[obj.id].plugin}", file=sys.stderr)
                return
            object.__setattr__(obj, "plugin", _plugin)  # frozen dataclasses too
            object.__setattr__(obj, "plugin_version", _versions().get(_plugin.split(":", 1)[0], ""))
            items[obj.id] = obj

        try:
            impl.function(register=register)
        except Exception as exc:  # a plugin whose hook raises loses its own entries, nothing else
            print(f"warning: plugin {impl.plugin_name} failed to register {kind}s: {type(exc).__name__}: {exc}",
                  file=sys.stderr)
    return dict(sorted(items.items()))


def get(kind: str, id: str):
    items = registry(kind)
    if id not in items:
        raise unknown_id(kind, id, items)
    return items[id]


def applicable_tasks(dataset) -> frozenset[str]:
    """Ids of the registered tasks that apply to ``dataset`` (what it has, less what it opts out of)."""
    return frozenset(t.id for t in registry("task").values() if t.supports(dataset) is None)
