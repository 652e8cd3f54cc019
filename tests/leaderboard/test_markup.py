"""The leaderboard's HTML: the best in bold, reported rows apart, the highlighted model, ties marked,
measured beside published with its notes."""
from __future__ import annotations

from support.databases import PUBLISHED, _comparisons, _table

from pathboard.leaderboard import frames, markup


def test_html_bolds_the_best_and_marks_reported_rows(long):
    html = markup.to_html(frames.comparison_table(long, include_reported=False))
    assert "<b>0.655 [0.62, 0.69]</b>" in html
    assert "0.612 [0.58, 0.64]" in html and "<b>0.612" not in html
    assert "reported" not in html
    html = markup.to_html(frames.comparison_table(long), {"crc-val-he-7k": "CRC-VAL-HE-7K"})
    assert "<b>0.909</b>" in html and "<b>0.718</b>" in html  # VirCLIP on CRC, ConText-L Avg
    assert html.count('<tr class="reported"') == len(PUBLISHED)
    assert html.count('<tr class="measured"') == 2
    assert "VirCLIP (reported)" in html and 'title="crc-val-he-7k: CRC-VAL-HE-7K"' in html
    assert "0.655 [0.62, 0.69]" in html and "<b>0.655" not in html  # VirCLIP beats it now
    assert "–" in html  # measured rows have no wsss4luad value and no Avg


def test_headers_are_short_ids_over_their_n_and_a_sample_is_marked(long):
    table = frames.comparison_table(long, include_reported=False)
    folder = "folder:/data/private/cohort-2024/lung"
    table = table.rename(columns={"crc-val-he-7k": folder})
    html = markup.to_html(table, sizes={folder: {"n": 32, "found": 32, "full": 7180}})
    head = html.split("</thead>")[0]
    assert ">folder:…/lung<br>" in head and f'title="{folder}. Measured on 32 of the full set' in head
    assert '<span class="n partial">n = 32 of 7,180</span>' in head
    html = markup.to_html(table, sizes={folder: {"n": 96, "found": 96, "full": None}})
    assert '<span class="n">n = 96</span>' in html and "partial" not in html.split("</style>")[1]
    assert '<td class="model">plip</td>' in html and "td.model{white-space:nowrap}" in html  # names on one line


def test_vs_published_html(vs_long):
    vs = frames.published_vs_measured(vs_long, "balanced_accuracy", "zeroshot-wsi", "ensemble")
    html = markup.vs_published_html(vs)
    assert "pathboard-leaderboard" not in html and 'class="pathboard-vs-published"' in html
    assert "0.874 [0.83, 0.91]" in html and "0.902" in html and "<b>-0.028</b>" in html
    assert "<b>+0.011</b>" in html and "<b>-0.037</b>" in html  # conch on nsclc and brca
    assert html.count('<tr class="vs-differs"') == 3
    assert "KEEP (ensemble)" in html and "CONCH (ensemble)" in html
    assert html.count("<li>") == 1 and "arXiv:2412.13126" in html and "Split:" in html and "Protocol:" in html


def test_html_highlights_the_chosen_model_and_marks_ties():
    table = _table({("x", "a"): 0.9, ("y", "a"): 0.85, ("x", "b"): 0.4, ("y", "b"): 0.7})
    tied = frames.tied_with_best(table, _comparisons(("x", "y", "a", False)), "weighted_f1", "zeroshot", "ensemble")
    html = markup.to_html(table, highlight="y", tied=tied)
    rows = html.split("<tr")[2:]
    (y_row,) = [r for r in rows if ">y</td>" in r]
    assert 'class="measured highlight"' in y_row and markup.HIGHLIGHT in y_row
    assert '0.850 [0.80, 0.90] <span class="tied"' in y_row
    assert html.count('class="tied"') == 1 and html.count("highlight") == 1


def test_an_interval_that_is_no_ordinary_ci_is_marked(long):
    rows = frames.select(long.assign(units=[2] * len(long), undefined=0.0), "weighted_f1", "zeroshot", "ensemble",
                         include_reported=False)
    table = frames.comparison_table(rows, include_reported=False)
    caveats = frames.interval_caveats(rows, table)
    assert caveats.at[("plip", "measured"), "crc-val-he-7k"] == "over 2 unit(s) only"
    assert caveats.at[("plip", "measured"), "Avg"] == ""
    html = markup.to_html(table, caveats=caveats)
    assert html.count('<span class="caveat" title="not an ordinary 95% CI: over 2 unit(s) only">†</span>') == 2
    assert frames.table_notes(rows, ["crc-val-he-7k"], {}, caveats)[-1] == frames.CAVEAT_NOTE
    assert frames.interval_caveats(rows.assign(units=300), table).eq("").all().all()  # ordinary CIs: no mark
