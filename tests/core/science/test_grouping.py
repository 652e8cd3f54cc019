"""Near-duplicate grouping: a canonical hash invariant to rotations and flips, augmented copies in their
source's group, oversized groups split."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image
from support.layouts import (
    LUNG,
    sample,
)

from pathboard.core.science import grouping

T = Image.Transpose


DIHEDRAL = (T.ROTATE_90, T.ROTATE_180, T.ROTATE_270, T.FLIP_LEFT_RIGHT, T.FLIP_TOP_BOTTOM, T.TRANSPOSE, T.TRANSVERSE)


def augment(img: Image.Image, angle: float, then: T | None = None) -> Image.Image:
    """A copy made as LC25000's were (Augmentor): rotated by ``angle`` degrees, cropped to the largest upright
    square inside, resized back, then optionally flipped or turned."""
    w = img.size[0]
    t = np.deg2rad(abs(angle))
    side = w / (np.cos(t) + np.sin(t))
    o = (w - side) / 2
    out = img.rotate(angle, resample=Image.BICUBIC).crop((round(o), round(o), round(o + side), round(o + side)))
    out = out.resize((w, w), Image.BICUBIC)
    return out.transpose(then) if then is not None else out


def test_canonical_hash_is_invariant_to_rotations_and_flips(shared_data):
    paths = sample(shared_data)
    assert len(paths) == 600
    hashes = {}
    for i, p in enumerate(paths):
        with Image.open(shared_data / LUNG / p) as img:
            img = img.convert("RGB")
            hashes[p] = grouping.canonical_hash(img)
            if i % 15 == 0:  # 40 images, each turned and flipped 7 ways (exactly: no re-encoding)
                assert {grouping.canonical_hash(img.transpose(t)) for t in DIHEDRAL} == {hashes[p]}, p
                odd = img.crop((3, 5, 201, 180))  # not square, odd size
                assert {grouping.canonical_hash(odd.transpose(t)) for t in DIHEDRAL} == {grouping.canonical_hash(odd)}
    assert len(set(hashes.values())) == 600  # distinct images, distinct hashes


@pytest.mark.slow
def test_rotated_and_flipped_copies_land_in_their_source_group(tmp_path, shared_data, fresh_cache):
    base = tmp_path / "lung"
    shutil.copytree(shared_data / LUNG, base)
    paths = sample(shared_data)
    copies = {}
    ops = {"r90": lambda im: im.transpose(T.ROTATE_90), "r180": lambda im: im.transpose(T.ROTATE_180),
           "flip": lambda im: im.transpose(T.FLIP_LEFT_RIGHT), "transpose": lambda im: im.transpose(T.TRANSPOSE),
           "rot7": lambda im: augment(im, 7), "rot-15-flip": lambda im: augment(im, -15, T.FLIP_LEFT_RIGHT),
           "rot25-vflip": lambda im: augment(im, 25, T.FLIP_TOP_BOTTOM), "rot-25": lambda im: augment(im, -25),
           "rot12-r90": lambda im: augment(im, 12, T.ROTATE_90)}
    for source in paths[7::60]:  # 10 sources, every class
        with Image.open(base / source) as img:
            img = img.convert("RGB")
            for name, op in ops.items():
                copy = f"{source[:-len('.jpeg')]}-{name}.jpeg"
                op(img).save(base / copy, quality=90)  # re-encoded, as the dataset's JPEGs are
                copies[copy] = source
    got = grouping.near_duplicate_groups(base, paths + list(copies))
    assert len(copies) == 90 and [c for c, s in copies.items() if got[c] != got[s]] == []
    assert sorted(fresh_cache.glob("datasets/near-duplicates-*.json"))  # cached


def test_an_oversized_group_is_split_with_a_stricter_threshold(monkeypatch):
    # 200 images chained by weak matches (20 bits), paired by strong ones (4 bits): the chain is chance
    weak = [(i, i + 1, 20) for i in range(199)]
    strong = [(2 * i, 2 * i + 1, 4) for i in range(100)]
    monkeypatch.setattr(grouping, "hashes", lambda reduced, progress=None: (None, None))
    monkeypatch.setattr(grouping, "near_pairs", lambda ident, variants, threshold: weak + strong)
    first = grouping.group_images(np.zeros((200, 2, 32, 32)))
    assert first == [i - i % 2 for i in range(200)]
    monkeypatch.setattr(grouping, "near_pairs", lambda ident, variants, threshold: weak[:30] + strong)
    first = grouping.group_images(np.zeros((200, 2, 32, 32)))  # a chain of 32 is not oversized: kept
    assert first[:32] == [0] * 32 and len(set(first)) == 1 + 84


@pytest.mark.slow
def test_candidates_find_the_links_of_comparing_every_pair_on_real_images(shared_data):
    """The real lung sample and 3 augmented copies of every 4th image (1,050 images): the candidate search
    finds (almost) every link that comparing every pair finds, and no other."""
    reduced = []
    for i, p in enumerate(sample(shared_data)):
        with Image.open(shared_data / LUNG / p) as img:
            img.draft("RGB", (192, 192))  # a quarter of the side: the hashes see 32 px
            img = img.convert("RGB").resize((192, 192), Image.BILINEAR)
        reduced.append(grouping.reduce_image(img))
        if i % 4 == 0:
            for angle, turn in ((-20, None), (9, T.ROTATE_90), (24, T.FLIP_LEFT_RIGHT)):
                reduced.append(grouping.reduce_image(augment(img, angle + i % 3, turn)))
    reduced = np.stack(reduced)
    ident, variants = grouping.hashes(reduced)
    every = {(min(i, j), max(i, j)) for i, j, _ in grouping.near_pairs(ident, variants)}
    found = {(min(i, j), max(i, j)) for i, j, _ in
             grouping.candidate_near_pairs(ident, variants, grouping.candidate_pairs(reduced))}
    assert len(reduced) == 1050 and len(every) > 1000
    assert found <= every and len(found) >= 0.995 * len(every), (len(found), len(every))


def test_the_transposed_variants_bits_are_moved_not_recomputed():
    coefs = np.random.default_rng(0).normal(size=(200, 2, 3, grouping.FREQS, grouping.FREQS)).astype(np.float32)
    assert np.array_equal(grouping._dihedral_bits(coefs), grouping._bits(grouping._dihedral(coefs)))


def test_components_take_pairs_and_refuse_anything_else():
    assert grouping._components(5, [(0, 1), (3, 1)]).tolist() == [0, 0, 2, 0, 4]
    assert grouping._components(2, []).tolist() == [0, 1]
    with pytest.raises(ValueError, match="expected"):
        grouping._components(4, [(0, 1, 5)])  # (i, j, bits) rows are not links


def test_a_manifest_without_meta_gets_groups_through_the_datasets_own_opener(tmp_path, fresh_cache):
    """A plugin's own Manifest (frozen, no meta) is filled in place; images the embedding left no thumbnail of are
    opened by the dataset's ``open_image``, as the embedding opens them."""
    from pathboard.core.interfaces.dataset import Manifest

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
    images = {"a/0.png": base, "a/1.png": base[:, ::-1], "a/2.png": rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)}
    opened = []

    def open_image(root, path):  # e.g. a dataset whose items live in one archive
        opened.append(path)
        return Image.fromarray(images[path])

    manifest = Manifest(tmp_path, sorted(images), np.zeros(3, dtype=np.int64), [None] * 3, "h" * 64)
    grouping.group_manifest(manifest, open_image=open_image)
    assert sorted(opened) == sorted(images)
    assert [m["group"] for m in manifest.meta] == ["a/0.png", "a/0.png", "a/2.png"]  # the flip joins its source
