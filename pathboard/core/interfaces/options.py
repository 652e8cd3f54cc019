"""Task options: a task declares them; the CLI, the plan and the results database handle them generically.

A run names option values as ``NAME=VALUE`` (every task of the run that declares ``NAME``) or
``TASK.NAME=VALUE`` (that task only, which wins). ``pathboard run --option zeroshot-wsi.mpp=1.0``,
and the older flags (``--mpp``, ``--tile-size``, ...) are aliases of the unqualified form.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pathboard.core.errors import PathboardError, unknown_id

_BOOLS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


@dataclass(frozen=True)
class Option:
    """One option of a task: ``type`` is ``float``, ``int``, ``str`` or ``bool``; ``multiple`` takes a
    comma-separated list (a tuple of that type, duplicates dropped); ``choices`` and ``min``/``max``
    bound the values; ``default`` None means "unset" (the task decides)."""

    name: str
    type: Callable = str
    default: Any = None
    help: str = ""
    choices: tuple = ()
    multiple: bool = False
    min: float | None = None
    max: float | None = None

    def parse(self, raw: Any, owner: str = "") -> Any:
        """A checked value from a string (the command line) or a Python value; one-line error otherwise."""
        where = f"option {owner + '.' if owner else ''}{self.name}={raw!r}"
        if raw is None:
            return None
        if self.multiple:
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            values = tuple(dict.fromkeys(self._one(i.strip() if isinstance(i, str) else i, where)
                                         for i in items if not isinstance(i, str) or i.strip()))
            if not values:
                raise PathboardError(f"{where}: give at least one value{self._choices_text()}")
            return values
        return self._one(raw, where)

    def _one(self, raw: Any, where: str) -> Any:
        try:
            if self.type is bool and isinstance(raw, str):
                if raw.strip().lower() not in _BOOLS:
                    raise ValueError(raw)
                value = _BOOLS[raw.strip().lower()]
            elif self.type is int and isinstance(raw, float) and not raw.is_integer():
                raise ValueError(raw)
            else:
                value = self.type(raw)
        except (TypeError, ValueError):
            raise PathboardError(f"{where}: expected {getattr(self.type, '__name__', 'a value')}"
                                 f"{self._choices_text()}") from None
        if self.choices and value not in self.choices:
            raise PathboardError(f"{where}: unknown value {value!r}{self._choices_text()}")
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            raise PathboardError(f"{where}: must be in [{self.min}, {self.max}]")
        return value

    def _choices_text(self) -> str:
        return f"; choose from {', '.join(map(str, self.choices))}" if self.choices else ""

    def describe(self) -> str:
        """``name (type, default D; one of a, b; min..max): help``, as ``pathboard list tasks`` prints it."""
        kind = "list of " if self.multiple else ""
        kind += getattr(self.type, "__name__", "value")
        default = ",".join(map(str, self.default)) if isinstance(self.default, tuple) else self.default
        facts = [kind, f"default {default}"]
        if self.choices:
            facts.append(f"{'any of' if self.multiple else 'one of'} {', '.join(map(str, self.choices))}")
        if self.min is not None or self.max is not None:
            facts.append(f"{'' if self.min is None else self.min}..{'' if self.max is None else self.max}")
        return f"{self.name} ({'; '.join(facts)}): {self.help}"


def normalise_name(name: str) -> str:
    return name.strip().replace("-", "_")


def parse_assignments(entries) -> dict[str, str]:
    """``["mpp=1.0", "fewshot.methods=prototype"]`` (or a mapping) -> {key: raw value}."""
    if isinstance(entries, Mapping):
        return {str(k).strip(): v for k, v in entries.items()}
    out = {}
    for entry in entries:
        key, sep, value = str(entry).partition("=")
        if not sep or not key.strip():
            raise PathboardError(f"--option {entry!r}: write NAME=VALUE or TASK.NAME=VALUE")
        out[key.strip()] = value
    return out


def values_for(tasks: list, given: Mapping[str, Any], known_tasks: Mapping[str, object]) -> dict[str, dict]:
    """Task id -> {option name: raw value} for ``tasks`` from ``given`` (keys ``NAME`` or ``TASK.NAME``).

    Every key must reach some task of the run: a misspelt option or task is an error with a suggestion.
    """
    chosen = {t.id: t for t in tasks}
    out: dict[str, dict] = {t.id: {} for t in tasks}
    qualified = {}
    for key, raw in given.items():
        task_id, dot, name = key.rpartition(".") if "." in key else ("", "", key)
        name = normalise_name(name)
        if dot:
            if task_id not in known_tasks:
                raise unknown_id("task", task_id, known_tasks)
            if task_id not in chosen:
                raise PathboardError(f"option {key}: task {task_id} is not in this run (--tasks)")
            declared = {o.name for o in chosen[task_id].options}
            if name not in declared:
                raise unknown_id(f"option of task {task_id}", name, declared)
            qualified[(task_id, name)] = raw
            continue
        takers = [t for t in tasks if name in {o.name for o in t.options}]
        if not takers:
            every = {o.name for t in tasks for o in t.options}
            raise unknown_id("option", name, every) if every else PathboardError(
                f"option {key}: no task of this run ({', '.join(chosen)}) takes options")
        for t in takers:
            out[t.id][name] = raw
    for (task_id, name), raw in qualified.items():
        out[task_id][name] = raw
    return out


def plain(values: Mapping[str, Any]) -> dict:
    """Option values as JSON-ready data (tuples as lists), sorted by name."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(values.items())}


def options_json(values: Mapping[str, Any]) -> tuple[str, str]:
    """The canonical JSON of a cell's option values and its sha256 (stored with the cell)."""
    blob = json.dumps(plain(values), sort_keys=True)
    return blob, hashlib.sha256(blob.encode()).hexdigest()


def protocol_of(prompt_hash: str | None, custom_prompts: bool, values: Mapping[str, Any], defaults: Mapping[str, Any],
                task_protocol: Mapping, manifest_hash: str, model: Mapping | None = None,
                intervals: Mapping | None = None, pack: str | None = None) -> tuple[str, str, bool]:
    """A cell's protocol: (JSON, hash, whether it is the default protocol).

    The protocol is everything besides the model that decides a number: the exact prompts (their hash,
    and whether they are pathboard's own), the task's option values, what the task reports of its own
    method (tiling, window, training pool, ...), the dataset manifest and the model's preprocessing and
    tokenizer (``ModelSpec.identity``), and what the headline's intervals rest on (``intervals``: the
    units resampled, and the share of resamples left out as undefined per metric). Cells are compared only
    within one protocol hash, which leaves out the manifest (it changes when files are added; the paired
    comparisons check the items themselves), the model's preprocessing (each model is compared with its own)
    and the intervals (they follow from the data). The default protocol is
    pathboard's own prompts with every option at its default, under no protocol pack; a cell of a pack
    (``pack``: its id) is of that pack's protocol, even where the pack's prompts and options are the defaults.
    """
    comparable = {"prompt_set": prompt_hash, "prompts": "custom" if custom_prompts else "built-in",
                  "options": plain(values), "task": dict(task_protocol)}
    if pack:
        comparable["pack"] = pack
    digest = hashlib.sha256(json.dumps(comparable, sort_keys=True).encode()).hexdigest()
    default = not custom_prompts and plain(values) == plain(defaults) and not pack
    recorded = {**comparable, "manifest": manifest_hash, "model": dict(model or {}), "intervals": dict(intervals or {})}
    return json.dumps(recorded, sort_keys=True), digest, default
