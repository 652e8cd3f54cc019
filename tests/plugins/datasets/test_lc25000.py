"""LC25000 lung on the real sample: its items and near-duplicate groups, which never mix classes."""
from __future__ import annotations

from collections import Counter
from itertools import combinations

import numpy as np
import pytest
from support.layouts import LUNG, sample

from pathboard.core.engine import plugins
from pathboard.core.errors import DatasetNotFoundError
from pathboard.core.science import grouping


def test_lc25000_lung_sample(shared_data):
    m = plugins.get("dataset", "lc25000-lung").manifest(shared_data)
    assert len(m) == 600 and np.bincount(m.labels).tolist() == [200, 200, 200]
    with pytest.raises(DatasetNotFoundError, match="colon_image_sets"):
        plugins.get("dataset", "lc25000-colon").manifest(shared_data)


#: pairs of the real sample that are copies of one original (checked by eye): flipped ones and ones rotated by
#: a small angle and zoomed, which a hash over the 8 dihedral transforms alone does not match
TWINS = [("lung_n/lungn2029.jpeg", "lung_n/lungn47.jpeg"), ("lung_scc/lungscc1578.jpeg", "lung_scc/lungscc2403.jpeg"),
         ("lung_n/lungn2803.jpeg", "lung_n/lungn3885.jpeg"), ("lung_aca/lungaca1106.jpeg", "lung_aca/lungaca1929.jpeg"),
         ("lung_aca/lungaca1197.jpeg", "lung_aca/lungaca3407.jpeg"), ("lung_aca/lungaca1214.jpeg", "lung_aca/lungaca237.jpeg"),
         ("lung_n/lungn1432.jpeg", "lung_n/lungn2524.jpeg"), ("lung_n/lungn2692.jpeg", "lung_n/lungn3104.jpeg"),
         ("lung_scc/lungscc3425.jpeg", "lung_scc/lungscc4601.jpeg")]


@pytest.mark.slow
def test_lc25000_groups_on_the_real_sample_never_mix_classes(shared_data, fresh_cache, monkeypatch):
    paths = sample(shared_data)
    # across classes at once (the loader groups within each class folder): a group mixing classes would be unsound
    across = grouping.near_duplicate_groups(shared_data / LUNG, paths)
    classes: dict[str, set[str]] = {}
    for p, g in across.items():
        classes.setdefault(g, set()).add(p.split("/")[0])
    assert [g for g, c in classes.items() if len(c) > 1] == []
    cross = [(a, b) for a, b in combinations(paths, 2) if a.split("/")[0] != b.split("/")[0]]
    assert sum(across[a] == across[b] for a, b in cross) / len(cross) < 0.001  # in fact none of 120,000
    assert all(across[a] == across[b] for a, b in TWINS)
    n = len(set(across.values()))
    # 480 across the 600 at once (the candidate search misses one of the 274 links of comparing every pair: two
    # images 22 bits apart, at the threshold); 479 within each class (200 images: every pair compared), as before
    assert n == 480, n  # 200 a class drawn from ~20 copies of 250 originals leave many twins
    assert max(Counter(across.values()).values()) <= 10

    m = plugins.get("dataset", "lc25000-lung").manifest(shared_data)
    grouping.group_manifest(m)  # as a run does before scoring (here every image is read: nothing was embedded)
    got = {p: x["group"] for p, x in zip(m.paths, m.meta)}
    assert set(got) == set(paths) and all(got.values())
    assert all(g.split("/")[0] == p.split("/")[0] for p, g in got.items())  # named by a member of its class
    assert len(set(got.values())) == 479 and all(got[a] == got[b] for a, b in TWINS)

    def no_reading(path):
        raise AssertionError(f"{path} read again: the groups should come from the cache")

    monkeypatch.setattr(grouping, "load", no_reading)
    again = plugins.get("dataset", "lc25000-lung").manifest(shared_data)
    grouping.group_manifest(again)
    assert again.meta == m.meta
