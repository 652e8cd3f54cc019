"""Protocol packs: one paper's evaluation protocol, as data, so that its published numbers can be rerun.

A pack names the datasets the paper evaluated on, and for each the tasks, the metric the paper reports and
the paper's own prompts (class names and templates, copied as published, with their source); the prompt
modes; the task options (tiling, slide pooling) and the interval convention; and, as plain sentences, what
the paper did not publish and what pathboard assumes in its place. ``pathboard run --protocol ID`` applies
it: every cell it scores records the pack's id in its protocol, and the leaderboard says a published number
was measured the "same" way only beside a cell of the pack that the published row names.

A pack is a JSON file (``ProtocolPack.load``)::

    {"id": "plip", "title": "PLIP zero-shot", "paper": "Huang et al., Nature Medicine 2023",
     "source": "https://github.com/PathologyFoundation/plip", "prompt_modes": ["single"],
     "options": {"zeroshot-wsi.tile_size": 256},               # TASK.NAME=VALUE, as --option takes them
     "intervals": "95% CI: 1000 bootstrap resamples",         # the paper's convention, in words
     "datasets": {"crc-val-he-7k": {"tasks": ["zeroshot"], "metric": "weighted_f1",
                                    "prompts": "plip/kather.json", "split": "all 7,180 patches"}},
     "gaps": ["the paper does not say ...; pathboard assumes ..."]}

``prompts`` is a prompt file (:class:`PromptSet`) beside the pack file, else among pathboard's packaged
prompts; without it the dataset's own prompt set is used. Third parties ship packs as plugins: their
``register_protocols`` hook calls ``register(ProtocolPack.load(path))`` (or builds one in Python).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pathboard.core.errors import PathboardError
from pathboard.core.interfaces.prompts import MODES, PromptSet, beside_or_packaged


def packaged_protocols() -> Path:
    """The folder of pathboard's own protocol packs (``pathboard/protocols``)."""
    return Path(str(resources.files("pathboard") / "protocols"))


@dataclass(frozen=True)
class PackDataset:
    """What a pack scores on one dataset: its tasks, the metric the paper reports there, the paper's prompts
    (None: the dataset's own), in words which items the paper evaluated, and their list where published."""

    tasks: tuple[str, ...]
    metric: str
    prompts: PromptSet | None = None
    split: str = ""
    #: the items the paper evaluated, where it published them (slide ids, file names without extension, or
    #: TCGA barcodes); empty: every evaluated item of the dataset
    items: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProtocolPack:
    id: str
    title: str
    paper: str
    source: str
    datasets: Mapping[str, PackDataset]
    prompt_modes: tuple[str, ...] = ("ensemble",)
    #: task option values, keyed ``TASK.NAME`` as ``--option`` takes them
    options: Mapping[str, Any] = field(default_factory=dict)
    intervals: str = ""
    #: what the paper did not publish, and what pathboard assumes in its place: one sentence each
    gaps: tuple[str, ...] = ()
    #: the page that documents the pack (``docs/protocols/ID.md`` for the built-in ones)
    doc: str = ""

    def __post_init__(self):
        where = f"protocol pack {self.id!r}"
        if not self.id or not self.datasets:
            raise PathboardError(f"{where}: a pack needs an id and at least one dataset")
        bad = [m for m in self.prompt_modes if m not in MODES]
        if bad or not self.prompt_modes:
            raise PathboardError(f"{where}: prompt modes must be among {', '.join(MODES)}, not {bad or 'none'}")
        for key in self.options:
            if "." not in key:
                raise PathboardError(f"{where}: option {key!r}: write TASK.NAME, the task it is for")

    @property
    def tasks(self) -> tuple[str, ...]:
        """Every task the pack scores, in the order its datasets name them."""
        return tuple(dict.fromkeys(t for d in self.datasets.values() for t in d.tasks))

    def describe(self) -> str:
        """One line: the title, and its datasets with their tasks."""
        sets = ", ".join(f"{d} ({'/'.join(p.tasks)})" for d, p in self.datasets.items())
        return f"{self.title}: {sets}; {'/'.join(self.prompt_modes)} prompts"

    def card(self) -> dict:
        """What the leaderboard shows of the pack (stored in the run's catalog: it never imports plugins)."""
        return {"title": self.title, "paper": self.paper, "source": self.source, "intervals": self.intervals,
                "prompt_modes": list(self.prompt_modes), "gaps": list(self.gaps), "doc": self.doc,
                "datasets": {d: {"tasks": list(p.tasks), "metric": p.metric, "split": p.split, "listed": len(p.items),
                                 "prompts": p.prompts.source if p.prompts else "the dataset's own"}
                             for d, p in self.datasets.items()}}

    @classmethod
    def load(cls, path: str | Path) -> ProtocolPack:
        """A pack from its JSON file (see the module's docstring); one line for a file that is not one."""
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
            datasets = {id: PackDataset(tuple(entry["tasks"]), str(entry["metric"]),
                                        _prompts(path, entry["prompts"]) if entry.get("prompts") else None,
                                        str(entry.get("split", "")),
                                        _items(path, entry["items"]) if entry.get("items") else ())
                        for id, entry in raw["datasets"].items()}
            return cls(id=str(raw["id"]), title=str(raw["title"]), paper=str(raw["paper"]), source=str(raw["source"]),
                       datasets=datasets, prompt_modes=tuple(raw.get("prompt_modes", ("ensemble",))),
                       options=dict(raw.get("options", {})), intervals=str(raw.get("intervals", "")),
                       gaps=tuple(raw.get("gaps", ())), doc=str(raw.get("doc", "")))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PathboardError(f"cannot read protocol pack {path}: {type(exc).__name__}: {exc}") from None


def _items(pack: Path, name: str) -> tuple[str, ...]:
    """The item list ``name`` beside the pack file: one id a line; blank lines and ``#`` comments ignored."""
    lines = (pack.parent / name).read_text().splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))


def listed(manifest, ids: tuple[str, ...]):
    """``manifest`` restricted to the items ``ids`` name (a file's name without its extension, or the part
    before its first dot: a TCGA barcode), its hash changed with the list; and the listed ids not found."""
    import hashlib
    from dataclasses import replace

    wanted, found = set(ids), set()
    keep = []
    for i, path in enumerate(manifest.paths):
        name = Path(path).name
        names = {name.rsplit(".", 1)[0], name.split(".", 1)[0]} & wanted
        if names:
            keep.append(i)
            found |= names
    digest = hashlib.sha256((manifest.hash + json.dumps(sorted(wanted))).encode()).hexdigest()
    subset = replace(manifest, paths=[manifest.paths[i] for i in keep], labels=manifest.labels[keep],
                     splits=[manifest.splits[i] for i in keep], hash=digest,
                     meta=[manifest.meta[i] for i in keep] if manifest.meta else manifest.meta)
    return subset, [i for i in ids if i not in found]


def _prompts(pack: Path, name: str) -> PromptSet:
    """The prompt file ``name`` of the pack file ``pack``: beside it, else among pathboard's packaged prompts."""
    return PromptSet.load(beside_or_packaged(pack, name, "prompt file", f"protocol pack {pack}"))
