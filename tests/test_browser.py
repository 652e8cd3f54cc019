"""End to end: `pathboard leaderboard` serves the page and headless Chromium renders the table."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_leaderboard import make_db, make_vs_db

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


@pytest.fixture()
def server(tmp_path):
    yield from serve(make_db(tmp_path / "results.duckdb"))


@pytest.fixture()
def vs_server(tmp_path):
    yield from serve(make_vs_db(tmp_path / "results.duckdb"))


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


@pytest.mark.browser
def test_leaderboard_page_in_chromium(server):
    with leaderboard_page(server) as page:
        page.wait_for_selector("text=Provenance of the measured numbers", timeout=60_000)
        screenshot(page, "PATHBOARD_SCREENSHOT")
        html = page.content()

    assert "Traceback" not in html
    assert "0.612 [0.58, 0.64]" in html and "0.655 [0.62, 0.69]" in html  # measured, ensemble
    assert "0.571 [0.54, 0.60]" not in html  # the single-prompt numbers are not the default
    for model in ("VirCLIP", "ConText-L-14-336px", "CONCH"):
        assert f"{model} (reported)" in html
    assert "<b>0.909</b>" in html  # VirCLIP's CRC-100K value is the column's best
    assert '<tr class="reported"' in html and '<tr class="measured"' in html
    assert "weighted_f1" in html


@pytest.mark.browser
def test_measured_vs_published_in_chromium(vs_server):
    """Switch the task to zero-shot WSI subtyping: the KEEP README's numbers beside the measured ones."""
    with leaderboard_page(vs_server, height=1800) as page:
        page.get_by_test_id("stSelectbox").filter(has_text="Task").click()
        page.get_by_role("option", name="zeroshot-wsi").click()
        page.wait_for_selector("table.pathboard-vs-published", timeout=60_000)
        page.wait_for_selector("text=KEEP (reported)", timeout=60_000)
        screenshot(page, "PATHBOARD_SCREENSHOT_VS")
        html = page.content()

    assert "Traceback" not in html
    assert "Measured vs published" in html
    assert "0.874 [0.83, 0.91]" in html and "<b>-0.028</b>" in html  # keep on TCGA-NSCLC vs .902
    assert "<b>+0.011</b>" in html and "<b>-0.037</b>" in html  # conch on TCGA-NSCLC and TCGA-BRCA
    assert html.count('<tr class="vs-differs"') == 3
    assert "the published protocol is not pathboard's default" in html and "arXiv:2412.13126" in html
    assert "KEEP (reported)" in html and "CONCH (reported)" in html and "<b>0.926</b>" in html  # KEEP, RCC
