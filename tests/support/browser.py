from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the server exited with {server.returncode}: {server.stdout.read()}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"the server did not answer at {url} within {timeout}s")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def stop(server: subprocess.Popen) -> None:
    """End the CLI and the Streamlit process it started: their own process group, SIGKILL after 10s."""
    if group_alive(server.pid):
        os.killpg(server.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while group_alive(server.pid) and time.monotonic() < deadline:
            server.poll()  # reap the CLI so its group can empty
            time.sleep(0.1)
        if group_alive(server.pid):
            os.killpg(server.pid, signal.SIGKILL)
    server.wait()


def serve(db: Path):
    """`pathboard leaderboard` on ``db`` at a free port: yields its URL, stops it afterwards."""
    port = free_port()
    cli = Path(sys.executable).with_name("pathboard")
    env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    proc = subprocess.Popen([str(cli), "leaderboard", "--db", str(db), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc)
        yield url
    finally:
        stop(proc)


@contextmanager
def leaderboard_page(url: str, width: int = 1400, height: int = 1000):
    """Headless Chromium on the leaderboard at ``url``, its first table drawn (Streamlit scrolls inside the
    page, so a tall viewport shows more)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(url, timeout=60_000)
            page.wait_for_selector("table.pathboard-leaderboard", timeout=60_000)
            yield page
        finally:
            browser.close()


def screenshot(page, variable: str) -> None:
    """Save the full page where $``variable`` points, to look at."""
    if os.environ.get(variable):
        page.screenshot(path=os.environ[variable], full_page=True)


@contextmanager
def view(url: str, query: str = "", wait_for: str = "[data-testid=stMainBlockContainer]", name: str = ""):
    """Chromium on the leaderboard at ``url?query``, once ``wait_for`` is drawn and the script is idle."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 3200}, accept_downloads=True)
            page.goto(f"{url}/?{query}", timeout=60_000)
            page.wait_for_selector(wait_for, timeout=60_000)
            idle(page)
            yield page
            if os.environ.get("PATHBOARD_SCREENSHOTS"):
                page.screenshot(path=str(Path(os.environ["PATHBOARD_SCREENSHOTS"]) / f"{name or 'view'}.png"),
                                full_page=True)
        finally:
            browser.close()


def idle(page) -> None:
    """Wait until Streamlit has finished the rerun (its status widget is gone)."""
    page.wait_for_timeout(300)
    page.wait_for_function("!document.querySelector('[data-testid=stStatusWidget]')", timeout=60_000)
    page.wait_for_timeout(300)


def until(page, check, what: str, timeout: float = 60) -> None:
    """Poll ``check(page)`` until it holds: a rerun's effect (its content, the rewritten URL) can land after
    the status widget is gone on a slow machine, so a test waits for the effect itself."""
    deadline = time.monotonic() + timeout
    while not check(page):
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.0f} s: {what} (url {page.url})")
        page.wait_for_timeout(250)


def choose(page, label: str, option: str) -> None:
    page.get_by_test_id("stSelectbox").filter(has_text=label).click()
    page.get_by_role("option", name=option, exact=True).click()
    idle(page)


def table_head(html: str) -> str:
    """The header row of the leaderboard table in the page (not the widgets above it, whose chips name the
    same datasets before the table is drawn again)."""
    return html.split('class="pathboard-leaderboard"', 1)[-1].split("</thead>", 1)[0]


def shown_table(html: str) -> dict[str, list[str]]:
    """{row label: [cell texts]} of the leaderboard table in the page."""
    body = html.split('class="pathboard-leaderboard"', 1)[1].split("</table>", 1)[0]
    out = {}
    for row in re.findall(r"<tr class=\"(?:measured|reported)[^\"]*\".*?</tr>", body, flags=re.S):
        cells = [re.sub(r"<[^>]+>", "", c).replace(" ≈", "").strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        out[cells[0]] = cells[2:]
    return out


#: what :func:`drawn_charts` reads of each chart's SVG: its size, its text by Vega role, and every mark that
#: carries a description (Vega-Lite writes "field: value; ..." into each mark's aria-label)
_READ_CHARTS = """() => [...document.querySelectorAll('.vega-embed')].map(embed => {
    const svg = embed.querySelector('svg');
    if (!svg) return null;
    const box = svg.getBoundingClientRect();
    const texts = {};
    svg.querySelectorAll('text').forEach(t => {
        const group = t.closest('g[class*=role-]');
        const role = group ? [...group.classList].find(c => c.startsWith('role-')).slice(5) : 'other';
        (texts[role] = texts[role] || []).push(t.textContent);
    });
    const marks = [...svg.querySelectorAll('[aria-roledescription]')].map(m => {
        const r = m.getBoundingClientRect();
        return {kind: m.getAttribute('aria-roledescription'), label: m.getAttribute('aria-label') || '',
                top: r.top, bottom: r.bottom, left: r.left, right: r.right,
                dash: m.getAttribute('stroke-dasharray') || ''};
    });
    return {width: box.width, height: box.height, texts, marks};
})"""


def drawn_charts(page) -> list[dict]:
    """Every chart on the page as Chromium drew it (SVG; None for one drawn on a canvas): ``width``,
    ``height``, ``texts`` {Vega role ("axis-title", "axis-label", "legend-label", "title-text", ...):
    [text]} and ``marks`` [{kind ("bar", "line", ...), label, fields (the label parsed), top, bottom, left,
    right, dash}]."""
    charts = page.evaluate(_READ_CHARTS)
    for chart in charts:
        for mark in chart["marks"] if chart else []:
            mark["fields"] = dict(part.replace("\u2212", "-").split(": ", 1)  # Vega writes minus as U+2212
                                  for part in mark["label"].split("; ") if ": " in part)
    return charts
