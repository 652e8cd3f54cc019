"""What every view shares: the sidebar's selection (database, protocol, run, highlighted model) with the
numbers it selects, and the page's URL, which carries every choice so that a link reopens the same view."""
from __future__ import annotations

from dataclasses import dataclass, field

import altair as alt
import pandas as pd
import streamlit as st


@dataclass
class Selection:
    """The sidebar's choices and what they select, built once per rerun by the app and handed to the view."""

    db: str
    view: str
    #: "default", "all" or a protocol hash; ``protocols`` maps each choice to its description
    protocol: str
    protocols: dict
    #: "latest" (every cell's newest result) or one run id
    run: str
    highlight: str | None
    #: the headline rows of the protocol and run chosen, and the published ones (``reported.csv``)
    measured: pd.DataFrame
    reported: pd.DataFrame
    #: titles and model cards as the runs stored them
    catalog: dict
    runs: pd.DataFrame
    #: the query parameters the page was opened with
    url: dict = field(default_factory=dict)

    @property
    def long(self) -> pd.DataFrame:
        """Measured and published rows in one long frame."""
        return pd.concat([self.measured, self.reported], ignore_index=True)

    def index(self, key: str, options: list, default=None) -> int:
        """The index in ``options`` of the link's value for widget ``key`` (on the first render only: after that
        the widget's own state wins), else of ``default``, else 0."""
        value = self.url.get(key) if key not in st.session_state else None
        for wanted in (value, default):
            if wanted in options:
                return options.index(wanted)
        return 0

    def tab_default(self, key: str, labels: list[str]) -> str | None:
        """The tab of tabs ``key`` to open first: the link's, fixed for the session. It must not change between
        reruns: Streamlit takes tabs whose ``default`` changed for new ones and loses which tab is open."""
        defaults = st.session_state.setdefault("tab_defaults", {})
        if key not in defaults:
            defaults[key] = self.url.get(key) if self.url.get(key) in labels else None
        return defaults[key]

    def share(self, **selection) -> None:
        """Put the view's selection in the URL's query parameters, so that a link reopens this view."""
        state = {"view": self.view, "protocol": self.protocol, "run": self.run,
                 "highlight": self.highlight or "(none)", **selection}
        st.query_params.from_dict({k: v for k, v in state.items() if v not in (None, "", [])})


#: how the page draws every chart: SVG, so that its text (titles, axis labels, legends) is text a reader can
#: select and a browser test can read, and each mark an element whose drawn size can be measured
EMBED = {"embedOptions": {"renderer": "svg"}}


def draw(where, chart, empty: str, quiet: bool = False, width: str = "stretch") -> None:
    """An Altair chart (rendered as SVG: EMBED; ``width`` "content" keeps a chart sized by steps at its own
    width), or what is missing for one (a caption when ``quiet``)."""
    if chart is not None:
        if width == "content":  # the chart's width and height are its plot's: axes and titles add to them
            chart = chart.properties(autosize=alt.AutoSizeParams(type="pad"))
        where.altair_chart(chart.properties(usermeta=EMBED), width=width)
    elif quiet:
        where.caption(empty)
    else:
        where.info(empty)
