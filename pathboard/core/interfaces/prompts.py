"""Prompt sets: per-class synonyms x templates, as CONCH builds its zero-shot classifiers.

A prompt file is JSON::

    {"source": "where the lists come from",
     "templates": ["CLASSNAME.", "an H&E image of CLASSNAME.", ...],   # or "@other.json": its "templates",
                                                                       # beside this file or else packaged
     "classes": {"ADI": ["adipose", "adipose tissue", ...], ...},
     "canonical": {"ADI": "adipose tissue"},          # optional; default: first synonym
     "single_template": "CLASSNAME."}                  # optional; default: first template

``single`` mode uses one prompt per class: the canonical name in the single template.
``ensemble`` mode uses every synonym x template; the runner averages their normalised embeddings.

A file may instead list explicit prompt *sets*, as MI-Zero publishes its 50 (one synonym per class, a
subset of the templates each)::

    {"source": "...", "sets": [{"classnames": {"CCRCC": "clear cell RCC", ...},
                                "templates": ["there is CLASSNAME.", ...]}, ...]}

Its ``classes`` and ``templates`` are then every synonym and template the sets use, so both modes still
work; a task that scores each set on its own (``zeroshot-wsi.prompt_sets=median``) reads :attr:`sets`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from pathboard.core.errors import PathboardError

MODES = ("single", "ensemble")
PLACEHOLDER = "CLASSNAME"


def packaged_prompts() -> Path:
    """The folder of pathboard's own prompt files (``pathboard/prompts``)."""
    return Path(str(resources.files("pathboard") / "prompts"))


def beside_or_packaged(path: Path, name: str, what: str, owner: str) -> Path:
    """The file ``name`` that the file ``path`` refers to: beside it, else among pathboard's packaged prompts;
    one line naming ``owner`` (e.g. "prompt file X") and ``what`` (e.g. "templates file") otherwise."""
    for candidate in (path.parent / name, packaged_prompts() / name):
        if candidate.is_file():
            return candidate
    raise PathboardError(f"{owner}: {what} {name} found neither beside it ({path.parent}) nor in {packaged_prompts()}")


@dataclass(frozen=True)
class PromptSet:
    classes: dict[str, list[str]]
    templates: list[str]
    canonical: dict[str, str] = field(default_factory=dict)
    single_template: str | None = None
    source: str = ""
    #: explicit prompt sets, each (class -> its one synonym, templates); empty: none published
    sets: tuple = ()

    @classmethod
    def load(cls, path: str | Path) -> PromptSet:
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
            if "sets" in raw:
                return cls._of_sets(raw, path)
            if isinstance(raw["templates"], str) and raw["templates"].startswith("@"):
                raw["templates"] = json.loads(beside_or_packaged(path, raw["templates"][1:], "templates file",
                                                                  f"prompt file {path}").read_text())["templates"]
            prompts = cls(
                classes={k: list(v) for k, v in raw["classes"].items()},
                templates=list(raw["templates"]),
                canonical=dict(raw.get("canonical", {})),
                single_template=raw.get("single_template"),
                source=raw.get("source", str(path)),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PathboardError(f"cannot read prompt file {path}: {type(exc).__name__}: {exc}") from None
        bad = [t for t in prompts.templates if PLACEHOLDER not in t]
        if bad or not prompts.templates or any(not v for v in prompts.classes.values()):
            raise PathboardError(f"prompt file {path}: every template needs {PLACEHOLDER} and every class a synonym")
        return prompts

    @classmethod
    def _of_sets(cls, raw: dict, path: Path) -> PromptSet:
        sets = tuple((dict(s["classnames"]), tuple(s["templates"])) for s in raw["sets"])
        bad = [t for _, templates in sets for t in templates if PLACEHOLDER not in t]
        if not sets or bad or any(not names or not templates for names, templates in sets):
            raise PathboardError(f"prompt file {path}: every set needs classnames and templates with {PLACEHOLDER}")
        classes: dict[str, list[str]] = {}
        for names, _ in sets:
            for c, name in names.items():
                classes.setdefault(c, [])
                if name not in classes[c]:
                    classes[c].append(name)
        templates = list(dict.fromkeys(t for _, ts in sets for t in ts))
        return cls(classes=classes, templates=templates, source=raw.get("source", str(path)), sets=sets)

    def set_prompts(self, classes: list[str]) -> list[dict[str, list[str]]]:
        """Per explicit set, class code -> its prompts (its one synonym in each of the set's templates)."""
        missing = [c for c in classes if any(c not in names for names, _ in self.sets)]
        if missing:
            raise PathboardError(f"prompt set ({self.source}): a set has no synonym for class(es) {', '.join(missing)}")
        return [{c: [t.replace(PLACEHOLDER, names[c]) for t in templates] for c in classes}
                for names, templates in self.sets]

    def prompts(self, mode: str, classes: list[str]) -> dict[str, list[str]]:
        """Class code -> the prompts embedded for it, in the order of ``classes``."""
        missing = [c for c in classes if c not in self.classes]
        if missing:
            raise PathboardError(f"prompt set ({self.source}) has no synonyms for class(es) {', '.join(missing)}")
        if mode == "single":
            template = self.single_template or self.templates[0]
            return {c: [template.replace(PLACEHOLDER, self.canonical.get(c, self.classes[c][0]))] for c in classes}
        if mode == "ensemble":
            return {c: [t.replace(PLACEHOLDER, s) for s in self.classes[c] for t in self.templates] for c in classes}
        raise PathboardError(f"unknown prompt mode {mode!r}; choose from {', '.join(MODES)}")

    def hash(self, mode: str, classes: list[str]) -> str:
        """Content hash of exactly the prompts a mode embeds."""
        what: object = self.prompts(mode, classes)
        if self.sets:  # the sets themselves, which a task may score one by one
            what = {"prompts": what, "sets": self.set_prompts(classes)}
        blob = json.dumps(what, sort_keys=False, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()
