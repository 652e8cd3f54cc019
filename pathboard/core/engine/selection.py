"""What ``--models``, ``--datasets`` and ``--tasks`` name: registered objects, groups, parameterised ids."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from pathboard.core.engine import plugins
from pathboard.core.errors import DatasetNotFoundError
from pathboard.core.interfaces.dataset import Dataset


def split_list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@dataclass(frozen=True)
class Selection:
    """The objects a value names; ``explicit``: named one by one (they must work; members of "all" or of a
    group may be skipped); ``parameterised``: ids built by a dataset factory (``folder:PATH``), which carry
    their own path and need no data root."""

    items: list
    explicit: bool
    parameterised: frozenset[str] = field(default_factory=frozenset)

    def __iter__(self):  # ``items, explicit = select(...)``
        return iter((self.items, self.explicit))

    def __getitem__(self, i):
        return (self.items, self.explicit)[i]


def select(kind: str, value: str) -> Selection:
    """Objects named by ``value`` ("all", ids, or for datasets a group, organ or level)."""
    items = plugins.registry(kind)
    names = split_list(value)
    if names == ["all"]:
        return Selection(list(items.values()), False)
    chosen, explicit, built = [], True, set()
    for name in names:
        dataset = dataset_from_spec(name) if kind == "dataset" else None  # folder:PATH, slides-csv:PATH, ...
        if dataset is not None:
            built.add(dataset.id)
            chosen.append(dataset)
            continue
        tagged = [d for d in items.values() if kind == "dataset" and name in d.groups]
        if name not in items and tagged:
            chosen += tagged
            explicit = False
        else:
            chosen.append(plugins.get(kind, name))
    return Selection(list({obj.id: obj for obj in chosen}.values()), explicit, frozenset(built))


def dataset_from_spec(value: str) -> Dataset | None:
    """The dataset a parameterised id names (``<prefix>:REST``, e.g. ``folder:PATH``, or ``NAME=<prefix>:REST``
    to give it the short id NAME in tables, headers and file names), built by the
    registered ``DatasetFactory`` of that prefix; None when ``value`` names no factory. Raises
    :class:`DatasetNotFoundError` (one line) when REST is empty or the factory rejects it."""
    name, eq, spec = value.strip().partition("=")
    if not eq or ":" in name:  # NAME=folder:PATH names the dataset; a '=' inside the path is not a name
        name, spec = "", value.strip()
    prefix, sep, rest = spec.partition(":")
    factories = plugins.registry("factory")
    if not sep or prefix not in factories:
        return None
    if not rest.strip():
        raise DatasetNotFoundError(f"{spec}: give a path after '{prefix}:'")
    dataset = factories[prefix].build(rest)
    if not name:
        return dataset
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) or name in plugins.registry("dataset"):
        raise DatasetNotFoundError(f"{value.strip()}: name a private dataset with letters, digits, '.', '-' and '_', "
                                   "and not as a registered dataset")
    return dataclasses.replace(dataset, id=name, title=dataset.title or f"{name} ({spec})")
