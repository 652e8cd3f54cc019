"""Slide <-> report retrieval: synthetic cells, report chunking, cases with several slides, applicability."""
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest

from pathboard.core.engine import plugins
from pathboard.core.interfaces.dataset import ImageFolderDataset, Manifest, SlideDataset
from pathboard.core.interfaces.embeddings import SlideEmbedding
from pathboard.core.interfaces.task import CellContext
from pathboard.plugins.tasks.report_retrieval import (
    ReportRetrieval,
    chunk_report,
    embed_reports,
    words_per_chunk,
)
from pathboard.plugins.tasks.zeroshot_wsi import ZeroShotWSI
from pathboard.testing import applicable_tasks, check_task

METRICS = {f"{d}_recall@{k}" for d in ("i2t", "t2i") for k in (1, 5, 10)} | {"mean_recall"}


@dataclass
class ReportSlides(SlideDataset):
    """A slide dataset whose reports are given: item path -> report text."""

    given: dict = field(default_factory=dict)

    def reports(self, manifest):
        return dict(self.given)


@dataclass
class ReportPatches(ImageFolderDataset):
    def reports(self, manifest):
        return {}


class FakeTiles:
    """What ctx.tiles offers: (path, label) items in manifest order and each slide's tile embeddings."""

    def __init__(self, tiles: dict[str, np.ndarray], labels: dict[str, int] | None = None):
        self._tiles, self._labels, self.failed = tiles, labels or {}, {}

    def items(self):
        return [(p, self._labels.get(p, -1)) for p in self._tiles]

    def labelled(self):
        return [(p, lab) for p, lab in self.items() if lab >= 0]

    def __contains__(self, path):
        return path in self._tiles

    def __getitem__(self, path):
        t = np.asarray(self._tiles[path], dtype=np.float32)
        return SlideEmbedding(t, np.zeros((len(t), 2), dtype=np.int64), {"size0": 224})

    def __len__(self):
        return len(self._tiles)


def manifest_of(paths, root=Path("data/TCGA")):
    return Manifest(root=root, paths=list(paths), labels=np.full(len(paths), -1), splits=[None] * len(paths),
                    hash="synthetic")


def cell(task, dataset, manifest, tiles, texts, text_context=77):
    values = task.configure({}).values
    return CellContext("synthetic-model", dataset, manifest, None, None, texts, None, MappingProxyType(dict(values)),
                       tiles=tiles, text_context=text_context)


def synthetic_cell(n_cases=8, dim=16, seed=0, text_context=77):
    """Cases with 1-2 slides of noisy tiles around the case's centre and long reports whose every chunk
    embeds near that centre; plus a slide without a report and a report whose slide was not tiled."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_cases + 1, dim)) * 3
    tiles, reports = {}, {}
    for c in range(n_cases):
        report = " ".join(f"c{c}w{j}" for j in range(120))  # 120 words: 3 chunks at 77 tokens
        for s in range(2 if c % 3 == 0 else 1):
            path = f"TCGA-{c:02d}/slide{s}.svs"
            tiles[path] = centres[c] + rng.normal(size=(30, dim))
            reports[path] = report
    tiles["TCGA-XX/unreported.svs"] = rng.normal(size=(5, dim))  # tiled, no report: ignored
    reports["TCGA-YY/failed.svs"] = " ".join(f"c{n_cases}w{j}" for j in range(50))  # not tiled: a distractor
    paths = list(tiles) + ["TCGA-YY/failed.svs"]

    def texts(strings):
        out = []
        for s in strings:
            c = int(s.split()[0][1:].split("w")[0])
            noise = np.random.default_rng(zlib.crc32(s.encode())).normal(size=dim) * 0.3
            out.append(centres[c] + noise)
        out = np.asarray(out, dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    task = ReportRetrieval()
    dataset = ReportSlides(id="synthetic-wsi", folder="TCGA", given=reports)
    return task, cell(task, dataset, manifest_of(paths), FakeTiles(tiles), texts, text_context)


def angle(degrees):
    r = np.radians(degrees)
    return np.array([[np.cos(r), np.sin(r)]])


def test_separable_synthetic_cell_retrieves_perfectly():
    task, ctx = synthetic_cell()
    result = check_task(task, ctx)
    m = {x.name: x for x in result[""]}
    assert set(m) == METRICS
    assert all(x.value == 1.0 for x in m.values()), {k: x.value for k, x in m.items()}
    assert m["i2t_recall@1"].n == 11  # the 11 tiled slides with a report (cases 0, 3, 6 have two)
    assert m["t2i_recall@1"].n == 8  # the 8 reports with a tiled slide; the 9th is only a distractor
    assert result.failed == {}


def test_chunking_splits_a_long_report_within_the_word_budget():
    assert words_per_chunk(77) == 46 and words_per_chunk(256) == 153 and words_per_chunk(1) == 1
    words = [f"word{i}" for i in range(200)]
    chunks = chunk_report("  ".join(words) + "\n", 77)
    assert len(chunks) == 5  # ceil(200 / 46)
    assert all(1 <= len(c.split()) <= 46 for c in chunks)
    assert " ".join(chunks).split() == words  # in order, nothing lost, no overlap
    assert chunk_report("short report", 77) == ["short report"]
    assert chunk_report("   ", 77) == []


def test_report_embedding_is_the_normalised_mean_of_its_chunks():
    dim = 8

    def encode(strings):
        out = np.stack([np.random.default_rng(zlib.crc32(s.encode())).normal(size=dim) for s in strings])
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)

    reports = [" ".join(f"a{i}" for i in range(100)), "one short report", " ".join(f"b{i}" for i in range(47))]
    calls = []
    got = embed_reports(lambda s: calls.append(list(s)) or encode(s), reports, 77)
    assert len(calls) == 1 and len(calls[0]) == 3 + 1 + 2  # every chunk in one call
    for report, row in zip(reports, got):
        chunks = chunk_report(report, 77)
        total = np.zeros(dim)
        for chunk in chunks:
            total += encode([chunk])[0]
        expected = total / len(chunks)
        np.testing.assert_allclose(row, expected / np.linalg.norm(expected), atol=1e-6)
    assert len(chunk_report(reports[0], 77)) >= 2


def test_either_slide_of_a_case_is_a_hit_for_its_report():
    # case A: report at 0 degrees, slides at 100 (far) and 5 (near); case B: report at 90, slide at 95
    reports = {"A/1.svs": "alpha report", "A/2.svs": "alpha report", "B/1.svs": "beta report"}
    where = {"alpha report": 0.0, "beta report": 90.0}
    tiles = FakeTiles({"A/1.svs": angle(100.0), "A/2.svs": angle(5.0), "B/1.svs": angle(95.0)})
    task = ReportRetrieval()
    dataset = ReportSlides(id="two-slides", folder="TCGA", given=reports)
    ctx = cell(task, dataset, manifest_of(reports), tiles, lambda s: np.concatenate([angle(where[t]) for t in s]))
    m = {x.name: x.value for x in task.score(ctx)[""]}
    # report A: its slide A/2 ranks first (A/1 ranks last, and does not count against it)
    assert m["t2i_recall@1"] == 1.0
    # slide A/1 sits nearer report B: a miss at 1; A/2 and B/1 find their case's report
    assert m["i2t_recall@1"] == pytest.approx(2 / 3) and m["i2t_recall@5"] == 1.0


def test_check_names_the_expected_reports_file():
    task = ReportRetrieval()
    manifest = manifest_of(["P/1.svs", "P/2.svs", "Q/1.svs"], root=Path("/data/TCGA"))
    none = ReportSlides(id="no-reports", folder="TCGA", given={})
    reason = task.check(none, manifest)
    assert reason and "\n" not in reason
    assert str(Path("/data/TCGA-Reports/TCGA_Reports.csv")) in reason and "0 pathology report" in reason
    one = ReportSlides(id="one-report", folder="TCGA", given={"P/1.svs": "same", "P/2.svs": "same", "Z/9.svs": "x"})
    assert "1 pathology report" in task.check(one, manifest)  # Z/9 is not a slide of the manifest
    two = ReportSlides(id="two-reports", folder="TCGA", given={"P/1.svs": "first", "Q/1.svs": "second"})
    assert task.check(two, manifest) is None


def test_inputs_tile_the_slides_with_a_report_at_the_zeroshot_wsi_tiling():
    task = ReportRetrieval().configure({"mpp": 1.0, "tile_size": 256})
    dataset = ReportSlides(id="d", folder="TCGA", given={"P/1.svs": "first", "Q/1.svs": "second"})
    inputs = task.inputs(dataset, manifest_of(["P/1.svs", "P/2.svs", "Q/1.svs"]))
    assert inputs.tile_items == ("P/1.svs", "Q/1.svs") and inputs.texts
    wsi = ZeroShotWSI().configure({"mpp": 1.0, "tile_size": 256})
    assert inputs.tiles == wsi.inputs(dataset, manifest_of([])).tiles  # one tiling: one tile cache
    assert {o.name for o in task.options} == {"mpp", "magnification", "tile_size"}
    assert not task.uses_prompts and task.requires == {"image", "text"} and task.needs == {"slides", "reports"}


def test_applies_to_slide_datasets_with_reports_only():
    task = plugins.get("task", "report-retrieval")
    assert isinstance(task, ReportRetrieval)
    nsclc = plugins.get("dataset", "tcga-nsclc")
    if callable(getattr(nsclc, "reports", None)):
        assert "report-retrieval" in applicable_tasks(nsclc)
    else:  # the TCGA loaders do not read reports yet: the facts alone decide
        assert "report-retrieval" not in applicable_tasks(nsclc)
        assert "no pathology reports" in task.supports(nsclc)
        assert "report-retrieval" in applicable_tasks(ReportSlides(id="fake-wsi", folder="TCGA"))
    assert ReportSlides(id="x", folder="TCGA").level == "wsi"
    patches = plugins.get("dataset", "crc-val-he-7k")
    assert "report-retrieval" not in applicable_tasks(patches)
    fake_patches = ReportPatches(id="fake-patches", folder="p", classes=["a", "b"])
    assert "reports" in fake_patches.facts and "report-retrieval" not in applicable_tasks(fake_patches)
    assert "patch-level" in task.supports(fake_patches)


def test_intervals_resample_cases_not_slides():
    """A case's slides share its report: the slide queries of one case are resampled together."""
    import dataclasses

    task, ctx = synthetic_cell()
    grouped = dataclasses.replace(ctx.manifest, meta=[{"group": p.split("/")[0]} for p in ctx.manifest.paths])
    result = task.score(dataclasses.replace(ctx, manifest=grouped))
    m = {x.name: x for x in result[""]}
    assert result.protocol["bootstrap"] == "cluster by group (8 groups)"  # the 8 cases of the 11 scored slides
    assert m["i2t_recall@1"].units == 8 and m["i2t_recall@1"].n == 11 and m["t2i_recall@1"].units == 8
    plain = {x.name: x for x in task.score(ctx)[""]}
    assert plain["i2t_recall@1"].units == 11  # without groups: the slides themselves
