"""BACH: photos by class folder and slides with XML regions, from its official layout."""
from __future__ import annotations

import shutil

from support.layouts import dataset, labelled, not_found, write_bach


def test_bach_photos_by_folder_and_slides_with_xml_regions(tmp_path):
    top = write_bach(tmp_path / "a")
    d = dataset("bach")
    m = d.manifest(tmp_path / "a")
    assert d.classes == ["Normal", "Benign", "InSitu", "Invasive"] and d.expected_files == 400
    assert labelled(m, d.classes) == {"Normal/n001.tif": "Normal", "Normal/n002.tif": "Normal",
                                      "Benign/b001.tif": "Benign", "InSitu/is001.tif": "InSitu",
                                      "Invasive/iv001.tif": "Invasive", "Invasive/iv002.tif": "Invasive"}
    assert d.open_image(m.root, m.paths[0]).size == (16, 16)
    (dl,) = d.downloads
    assert dl.checksum == "md5:8ae1801334aa943c44627c1eef3631b2" and dl.extract_to == ""
    (top / "Photos/Benign/b001.tif").rename(top / "Photos/InSitu/b001.tif")
    assert d.manifest(tmp_path / "a").hash != m.hash

    w = dataset("bach-wsi")
    slides = w.manifest(tmp_path / "a")
    assert w.level == "wsi" and slides.paths == ["03.svs", "A01.svs", "A02.svs"] and set(slides.labels) == {-1}
    regions = w.annotations(slides.root, "A01.svs")
    assert [r.label for r in regions] == ["Benign", "InSitu", "Invasive"]  # the 1-vertex region is dropped
    assert regions[0].polygon == ((10.0, 20.0), (30.5, 20.0), (30.0, 45.0)) and len(regions[1].polygon) == 4
    assert w.annotations(slides.root, "A02.svs") == []

    shutil.rmtree(top / "Photos")
    not_found("bach", tmp_path / "a", str(top / "Photos"), "ICIAR2018_BACH_Challenge/Photos/<Normal|Benign")
    for slide in (top / "WSI").glob("*.svs"):
        slide.unlink()
    not_found("bach-wsi", tmp_path / "a", "no slides", "found A01.xml, gt_thumbnails")


def test_bach_manifest_hash_is_stable(tmp_path):
    write_bach(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    assert dataset("bach").manifest(tmp_path / "a").hash == dataset("bach").manifest(tmp_path / "b").hash
