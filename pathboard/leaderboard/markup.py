"""The leaderboard's tables as HTML: the Overview's paper table and the measured-vs-published table. Plain
strings from the frames of :mod:`pathboard.leaderboard.frames`; no Streamlit, no SQL."""
from __future__ import annotations

import html

import pandas as pd

from pathboard.leaderboard.frames import (
    REPORTED_SUFFIX,
    STATS,
    best_per_column,
    format_cell,
    partial,
    short_id,
    size_label,
)

#: the background of the highlighted model's rows, as the source papers mark "our model"
HIGHLIGHT = "#dbeafe"


TIED_TITLE = "tied with the best: their paired difference is not significant (Holm-adjusted bootstrap)"


def _header(column: str, title: str, size: dict | None) -> str:
    """A column's header: its short id, under it the column's n (``n = 32 of 7,180`` in orange for a
    sample of the full set); on hover the full id, the dataset's title and what the n means."""
    label = size_label(size or {})
    hover = column if title in ("", column) else f"{column}: {title}"
    if size and partial(size):
        hover += (f". Measured on {size['found']:,} of the full set's {size['full']:,} items: a sample, beside "
                  "numbers published on the full set")
    elif label:
        hover += f". {label} items evaluated"
    line = f'<br><span class="{"n partial" if size and partial(size) else "n"}">{html.escape(label)}</span>' \
        if label else ""
    return f'<th class="num" title="{html.escape(hover)}">{html.escape(short_id(column))}{line}</th>'


def to_html(table: pd.DataFrame, titles: dict[str, str] | None = None, lower: bool = False,
            highlight: str | None = None, tied: pd.DataFrame | None = None,
            sizes: dict[str, dict] | None = None, caveats: pd.DataFrame | None = None,
            pooling: dict[str, str] | None = None) -> str:
    """The table as one HTML string: best per column in <b> (the lowest when ``lower``), reported rows
    italic and grey, the ``highlight`` model's rows (measured and reported) on a light-blue background,
    and cells ``tied`` with their column's best (:func:`tied_with_best`) marked "≈".

    Headers are short ids (:func:`short_id`) with their n under them (``sizes``: :func:`column_sizes`); a cell
    whose interval is no ordinary 95% CI (``caveats``: :func:`interval_caveats`) gets a "†" that says why;
    ``titles`` maps dataset ids to a longer name, shown with the full id as the header's tooltip. ``pooling``
    (:func:`poolings`: model -> how it makes one score per slide) adds a *pooling* column, so slide encoders and
    patch models pooled from tiles stand in one table, each row saying which it is.
    """
    titles, sizes = titles or {}, sizes or {}
    best = best_per_column(table, lower)
    columns = list(table["value"].columns)
    head = "".join(_header(c, titles.get(c, c), sizes.get(c)) for c in columns)
    out = [TABLE_STYLE, '<table class="pathboard-leaderboard">',
           f"<thead><tr><th>model</th><th>source</th>{'<th>pooling</th>' if pooling else ''}{head}</tr></thead><tbody>"]
    stats = [table[stat].to_numpy(dtype=float) for stat in STATS]  # picked once: per-cell .at is slow
    best, tied_at = best.to_numpy(), None
    if tied is not None:
        tied_at = tied.reindex(index=table.index, columns=columns, fill_value=False).fillna(False).to_numpy(bool)
    caveat_at = None if caveats is None else caveats.reindex(index=table.index, columns=columns,
                                                               fill_value="").fillna("").to_numpy(object)
    previous = None
    for i, (model, source) in enumerate(table.index):
        style = "color:#777;font-style:italic;" if source == "reported" else ""
        if previous is not None and source != previous:  # a rule between measured and reported
            style += "border-top:2px solid #888;"
        previous = source
        marked = highlight is not None and model.removesuffix(REPORTED_SUFFIX) == highlight
        if marked:
            style += f"background:{HIGHLIGHT};"
        out.append(f'<tr class="{source}{" highlight" if marked else ""}" style="{style}">'
                   f'<td class="model">{html.escape(model)}</td><td>{source}</td>')
        if pooling:
            out.append(f'<td class="pooling">{html.escape(pooling.get(model, ""))}</td>')
        for j in range(len(columns)):
            text = html.escape(format_cell(*(stat[i, j] for stat in stats)))
            if best[i, j]:
                text = f"<b>{text}</b>"
            elif tied_at is not None and tied_at[i, j]:
                text = f'{text} <span class="tied" title="{TIED_TITLE}">≈</span>'
            if caveat_at is not None and caveat_at[i, j]:
                why = html.escape(f"not an ordinary 95% CI: {caveat_at[i, j]}")
                text += f'<span class="caveat" title="{why}">†</span>'
            out.append(f'<td class="num">{text}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


#: the leaderboard table's cell styles, once per table rather than on each of its ~10^3 cells
TABLE_STYLE = ("<style>table.pathboard-leaderboard{border-collapse:collapse;font-size:0.9rem}"
               ".pathboard-leaderboard td,.pathboard-leaderboard th{padding:4px 10px;border-bottom:1px solid #ddd;"
               "text-align:left}.pathboard-leaderboard th{border-bottom:2px solid #888;vertical-align:bottom}"
               ".pathboard-leaderboard .num{text-align:right;white-space:nowrap}"
               ".pathboard-leaderboard td.model{white-space:nowrap}"
               ".pathboard-leaderboard .n{font-weight:normal;font-size:0.75rem;color:#666}"
               ".pathboard-leaderboard .n.partial{color:#b45309}</style>")


def vs_published_notes(frame: pd.DataFrame) -> list[str]:
    """The footnotes of :func:`vs_published_html`: one per distinct published source, split and protocol."""
    return list(dict.fromkeys(_vs_note(r) for r in frame.itertuples()))


def _vs_note(r) -> str:
    text = f"{r.paper}; {r.table}. Split: {r.split or 'not stated'}."
    text += f" Protocol: {r.protocol_note}." if r.protocol_note else ""
    pack = getattr(r, "pack", "")
    return text + (f" Rerun it: pathboard run --protocol {pack} (docs/protocols/{pack}.md)." if pack else "")


def vs_published_html(frame: pd.DataFrame) -> str:
    """:func:`published_vs_measured` as one HTML table (class ``pathboard-vs-published``): measured value
    [CI], the published value and model, Δ (measured − published), whether the published value lies in the
    measured CI ("in CI"), and the protocol verdict with a numbered footnote on the source, split and protocol."""
    notes = vs_published_notes(frame)
    cell = "padding:4px 10px;border-bottom:1px solid #ddd;"
    th = cell + "border-bottom:2px solid #888;"
    head = "".join(f'<th style="{th}text-align:{align};white-space:nowrap">{name}</th>' for name, align in [
        ("model", "left"), ("dataset", "left"), ("measured", "right"), ("published", "right"),
        ("published as", "left"), ("Δ", "right"), ("in CI", "left"), ("protocol", "left")])
    out = ['<table class="pathboard-vs-published" style="border-collapse:collapse;font-size:0.9rem">',
           f"<thead><tr>{head}</tr></thead><tbody>"]
    for r in frame.itertuples():
        mark = notes.index(_vs_note(r)) + 1
        colour = {"differs": "#b35c00", "unknown": "#777"}.get(r.protocol, "#2e7d32")
        reasons = html.escape("; ".join(r.differences))
        under = f" (protocol pack {html.escape(r.pack)})" if r.protocol == "same" and getattr(r, "pack", "") else ""
        protocol = f"<b>{r.protocol}</b>{under}" + (f": {reasons}" if reasons else "")
        left = f'<td style="{cell}white-space:nowrap">'
        right = f'<td style="{cell}text-align:right;white-space:nowrap">'
        out.append(f'<tr class="vs-{r.protocol}">{left}{html.escape(r.model)}</td>'
                   f"{left}{html.escape(r.dataset)}</td>"
                   f"{right}{html.escape(format_cell(r.value, r.ci_low, r.ci_high))}</td>"
                   f"{right}{r.published:.3f}</td>"
                   f'<td style="{cell}white-space:nowrap;color:#777;font-style:italic">'
                   f"{html.escape(r.published_model)} ({html.escape(r.published_mode)})</td>"
                   f"{right}<b>{r.delta:+.3f}</b></td>"
                   f'{left}{"yes" if r.in_ci else "no"}</td>'
                   f'<td style="{cell}color:{colour}">{protocol} <sup>[{mark}]</sup></td></tr>')
    out.append("</tbody></table>")
    out.append('<ol class="pathboard-vs-notes" style="font-size:0.8rem;color:#555;margin-top:6px">')
    out += [f"<li>{html.escape(note)}</li>" for note in notes]
    out.append("</ol>")
    return "".join(out)
