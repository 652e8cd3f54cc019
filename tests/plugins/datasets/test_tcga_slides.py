"""TCGA slide sets from GDC layouts: labels from the clinical export or labels.csv, subtypes of a GDC
diagnosis, and TCGA-Reports joined by case."""
import csv

import openslide
import pytest
from support.layouts import (
    CESC_EXPECTED,
    get,
    one_line_error,
    same_times,
    slide_labels,
    write_brca_labels,
    write_cesc,
    write_reports,
    write_tcga,
)

from pathboard.core.errors import PathboardError
from pathboard.testing import applicable_tasks


def test_tcga_projects_label_the_slides(tmp_path, shared_data):
    root, _ = write_tcga(tmp_path / "a", shared_data / "slides" / "CMU-1-Small-Region.svs")
    rcc = get("tcga-rcc").manifest(root)
    assert len(rcc) == 3 and [rcc.meta[i]["project"] for i in range(3)] == ["TCGA-KIRC", "TCGA-KIRC", "TCGA-KIRP"]
    assert rcc.labels.tolist() == [0, 0, 1]  # CCRCC, CCRCC, PRCC; the frozen TS1 slide is not diagnostic
    assert all(p.count("/") == 2 and p.endswith(".svs") for p in rcc.paths)
    with openslide.OpenSlide(str(rcc.root / rcc.paths[0])) as slide:
        assert slide.dimensions == (2220, 2967)
    cesc = get("tcga-cesc").manifest(root)  # every slide, frozen ones too, labelled by case from clinical.tsv
    assert len(cesc) == 3 and slide_labels(cesc) == {"TCGA-C5-A1BE-01Z-00-DX1": 0, "TCGA-C5-A1BE-01A-01-TS1": 0,
                                                     "TCGA-EK-A2RE-01Z-00-DX1": 1}  # SCC, SCC, ADC
    assert get("tcga-cesc").facts == {"slides", "labels", "reports"} and "zeroshot-wsi" in applicable_tasks(get("tcga-cesc"))
    assert {x["case"] for x in cesc.meta} == {"TCGA-C5-A1BE", "TCGA-EK-A2RE"}
    msg = one_line_error(get("tcga-nsclc"), root)
    assert f"expected project folder(s) {root}/TCGA/TCGA-LUAD, {root}/TCGA/TCGA-LUSC" in msg and "TCGA-BRCA" in msg


@pytest.mark.parametrize(("header", "form"), [("legacy", "tsv"), ("portal", "tsv"), ("portal", "cart"),
                                              ("legacy", "project")])
def test_tcga_cesc_labels_come_from_the_gdc_clinical_export(tmp_path, shared_data, capsys, header, form):
    svs = shared_data / "slides" / "CMU-1-Small-Region.svs"
    root = write_cesc(tmp_path / "a", svs, header, form)
    ds = get("tcga-cesc")
    assert ds.classes == ["SCC", "ADC", "ASC"] and ds.prompts().classes.keys() == {"SCC", "ADC", "ASC"}
    m = ds.manifest(root)
    assert slide_labels(m) == CESC_EXPECTED
    err = capsys.readouterr().err
    assert "tcga-cesc: 1 case(s) with conflicting diagnoses in the clinical export left unlabelled: TCGA-EA-A3HT" in err
    if form != "tsv":  # read inside the archive: nothing is extracted next to it
        assert not (root / "TCGA" / "TCGA-CESC" / "clinical.tsv").exists()
    # every header spelling and export form labels the same slides the same way
    assert m.hash == same_times(ds, m, write_cesc(tmp_path / "ref", svs)).hash


@pytest.mark.parametrize(("morphology", "diagnosis", "label"), [
    *((code, "", "SCC") for code in ("8070/3", "8071/3", "8072/3", "8083/3", "8052/3", "8051/3")),
    *((code, "", "ADC") for code in ("8140/3", "8380/3", "8480/3", "8482/3", "8310/3", "8441/3")),
    ("8560/3", "", "ASC"),
    ("", "Squamous cell carcinoma, NOS", "SCC"), ("", "Basaloid squamous cell carcinoma", "SCC"),
    ("", "Adenocarcinoma, NOS", "ADC"), ("", "Endometrioid adenocarcinoma, NOS", "ADC"),
    ("", "Adenocarcinoma with squamous metaplasia", "ADC"), ("", "Adenosquamous carcinoma", "ASC"),
    ("8041/3", "Small cell carcinoma, NOS", None), ("8077/2", "", None), ("", "", None),
    ("8240/3", "Carcinoid tumor, NOS", None), ("8246/3", "Neuroendocrine carcinoma, NOS", None),  # not glandular
    ("8249/3", "Atypical carcinoid tumor", None), ("8239/3", "", "ADC"), ("8250/3", "", "ADC"),
])
def test_tcga_cesc_subtype_of_a_gdc_diagnosis(morphology, diagnosis, label):
    assert get("tcga-cesc").subtype(morphology, diagnosis) == label


def test_tcga_cesc_labels_csv_overrides_the_export(tmp_path, shared_data):
    root, _ = write_tcga(tmp_path / "a", shared_data / "slides" / "CMU-1-Small-Region.svs")
    folder = root / "TCGA" / "TCGA-CESC"
    with open(folder / "labels.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["slide_id", "label"], ["TCGA-EK-A2RE-01Z-00-DX1", "ASC"],
                                  ["TCGA-C5-A1BE-01A-01-TS1", ""]])  # an empty label: unlabelled
    assert slide_labels(get("tcga-cesc").manifest(root)) == {"TCGA-C5-A1BE-01Z-00-DX1": 0, "TCGA-C5-A1BE-01A-01-TS1": -1,
                                                             "TCGA-EK-A2RE-01Z-00-DX1": 2}
    (folder / "clinical.tsv").unlink()  # labels.csv alone: the slides it does not list stay unlabelled
    assert slide_labels(get("tcga-cesc").manifest(root)) == {"TCGA-C5-A1BE-01Z-00-DX1": -1, "TCGA-C5-A1BE-01A-01-TS1": -1,
                                                             "TCGA-EK-A2RE-01Z-00-DX1": 2}
    (folder / "labels.csv").unlink()
    msg = one_line_error(get("tcga-cesc"), root)
    assert f"{folder}/labels.csv or a GDC clinical export (clinical.tsv or clinical.*.tar.gz) not found" in msg
    (folder / "clinical.tsv").write_text("id\tfilename\n")  # not a clinical export (a gdc manifest)
    with pytest.raises(PathboardError, match="clinical.tsv: not a GDC clinical export: expected columns case_submitter_id"):
        get("tcga-cesc").manifest(root)


def test_tcga_reports_are_joined_by_case(tmp_path, shared_data):
    root, _ = write_tcga(tmp_path / "a", shared_data / "slides" / "CMU-1-Small-Region.svs")
    cesc, rcc = get("tcga-cesc"), get("tcga-rcc")
    m = cesc.manifest(root)
    assert cesc.reports(m) == {}  # no TCGA-Reports release under the data root
    scc = 'FINAL DIAGNOSIS:\nA. CERVIX, BIOPSY: INVASIVE SQUAMOUS CELL CARCINOMA, "KERATINIZING", GRADE 2.'
    write_reports(root, {"TCGA-C5-A1BE": scc, "TCGA-A0-0001": "Kidney: clear cell renal cell carcinoma.",
                         "TCGA-ZZ-0000": "a case without slides"})
    by_slide = {path.rsplit("/", 1)[-1].split(".")[0]: text for path, text in cesc.reports(m).items()}
    assert by_slide == {"TCGA-C5-A1BE-01Z-00-DX1": scc, "TCGA-C5-A1BE-01A-01-TS1": scc}  # EK-A2RE has no report
    assert set(cesc.reports(m)) <= set(m.paths)
    kidney = rcc.manifest(root)
    assert list(rcc.reports(kidney).values()) == ["Kidney: clear cell renal cell carcinoma."]
    assert all("reports" in get(id).facts for id in ("tcga-cesc", "tcga-brca", "tcga-rcc", "tcga-nsclc"))
    assert "TCGA-Reports/TCGA_Reports.csv" in cesc.access and "Projects -> TCGA-CESC -> Clinical" in cesc.access


def test_tcga_brca_labels_come_from_labels_csv(tmp_path, shared_data):
    root, ids = write_tcga(tmp_path / "a", shared_data / "slides" / "CMU-1-Small-Region.svs")
    msg = one_line_error(get("tcga-brca"), root)
    assert f"{root}/TCGA/TCGA-BRCA/labels.csv not found" in msg
    write_brca_labels(root, ids)
    m = get("tcga-brca").manifest(root)
    by_case = {x["case"]: int(label) for x, label in zip(m.meta, m.labels)}
    # keyed by the file name, the barcode and the GDC file UUID; an unlisted slide stays unlabelled
    assert by_case == {"TCGA-A1-0001": 0, "TCGA-A1-0002": 1, "TCGA-A1-0003": 0, "TCGA-A1-0004": -1}
    write_brca_labels(root, ids, ilc="IDC")
    assert get("tcga-brca").manifest(root).hash != m.hash
    write_brca_labels(root, ids, ilc="ILC")
    assert get("tcga-brca").manifest(root).hash == m.hash
    write_brca_labels(root, ids, ilc="lobular")
    with pytest.raises(PathboardError, match="label 'lobular' of TCGA-A1-0002-01Z-00-DX1 is not a class of tcga-brca"):
        get("tcga-brca").manifest(root)
