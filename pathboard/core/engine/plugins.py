"""Load every plugin from the ``pathboard`` entry-point group, built-ins included."""
from __future__ import annotations

import functools
import importlib.metadata
import sys

import pluggy

from pathboard.core.errors import unknown_id
from pathboard.core.interfaces import hookspecs

GROUP = "pathboard"
KINDS = {"model": "register_models", "dataset": "register_datasets", "task": "register_tasks",
         "factory": "register_dataset_factories"}


@functools.cache
def plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    for ep in importlib.metadata.entry_points(group=GROUP):
        dist = ep.dist.name if ep.dist else "?"
        try:
            pm.register(ep.load(), name=f"{dist}:{ep.name}")
        except Exception as exc:  # one broken plugin must not take the others down
            print(f"warning: plugin {ep.name} from {dist} failed to load: {exc}", file=sys.stderr)
    return pm


@functools.cache
def registry(kind: str) -> dict:
    """All registered objects of one kind, by id. Each object gets ``.plugin`` naming its source."""
    items: dict = {}
    for impl in getattr(plugin_manager().hook, KINDS[kind]).get_hookimpls():

        def register(obj, _plugin=impl.plugin_name):
            if obj.id in items:
                print(f"warning: {kind} {obj.id!r} from {_plugin} ignored: already registered by "
                      f"{items[obj.id].plugin}", file=sys.stderr)
                return
            obj.plugin = _plugin
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
