"""The demo in a real browser: ``streamlit run`` headless, driven by Playwright with Debian's
Chromium (no browser download). Type a text, see the label, save a screenshot.

The screenshots go to ``$TEXTPROJ_SCREENSHOT`` and ``$TEXTPROJ_SCREENSHOT_BITS`` if set
(``docs/img/app.png`` and ``docs/img/app-bits.png`` were made that way), else to a temporary
folder.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import textproj

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app" / "streamlit_app.py"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
START_TIMEOUT = 180  # seconds for streamlit to answer its health check
PAGE_TIMEOUT = 180_000  # ms for the page to show a prediction (first run loads torch)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _model_path() -> Path:
    """The model the app shows with no picker choice: $TEXTPROJ_MODEL or the bundled one."""
    return Path(os.environ.get("TEXTPROJ_MODEL") or ROOT / "app" / "models" / "banking77")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = (tmp_path_factory.mktemp("streamlit") / "server.log").open("w")
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless=true"]
    command += [f"--server.port={port}", "--server.address=127.0.0.1"]
    command += ["--browser.gatherUsageStats=false", "--server.fileWatcherType=none"]
    command += ["--client.toolbarMode=minimal"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as response:
                    if response.read() == b"ok":
                        break
            except OSError:
                pass
            assert process.poll() is None, f"streamlit exited, see {log.name}"
            assert time.monotonic() < deadline, f"streamlit did not start, see {log.name}"
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import Error, sync_playwright

    # Outside CI a machine without Chromium skips; under CI (.ci/run installs it) that fails.
    give_up = pytest.fail if os.environ.get("CI") == "true" else pytest.skip
    if not CHROMIUM.exists():
        give_up(f"{CHROMIUM} is missing (.ci/run installs Debian's chromium package)")
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Error as error:
            give_up(f"{CHROMIUM} cannot start here: {error}")
        yield launched
        launched.close()


@pytest.mark.slow
def test_type_a_text_and_see_the_label(server: str, browser, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    classifier = textproj.load(_model_path())
    text = "I think someone stole my card, please block it"
    label = classifier.predict([text])[0]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(PAGE_TIMEOUT)
    page.goto(server)
    expect(page.locator("p", has_text="Predicted label:").first).to_be_visible(
        timeout=PAGE_TIMEOUT
    )  # the default text's prediction: the app is up
    box = page.get_by_label("Text", exact=True)
    box.fill(text)
    box.press("Enter")
    shown = page.locator("p", has_text="Predicted label:").first
    expect(shown).to_contain_text(label, timeout=PAGE_TIMEOUT)
    expect(page.get_by_text("latency").first).to_be_visible(timeout=PAGE_TIMEOUT)
    # the script run has finished (no "Running…" status) and its charts are drawn
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=PAGE_TIMEOUT)
    expect(page.locator(".vega-embed .marks").first).to_be_visible(timeout=PAGE_TIMEOUT)
    if (_model_path() / "trainer.npz").is_file():
        expect(page.get_by_text("Trainer network")).to_be_visible(timeout=PAGE_TIMEOUT)
    if classifier.design == "token":  # the explanation view names each token of the text
        expect(page.get_by_text("Which tokens drove")).to_be_visible(timeout=PAGE_TIMEOUT)
    page.wait_for_timeout(500)  # chart transitions
    screenshot = Path(os.environ.get("TEXTPROJ_SCREENSHOT") or tmp_path / "app.png")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=screenshot, full_page=True)
    assert screenshot.stat().st_size > 10_000
    page.get_by_role("tab", name="Projection bits").click()
    design_note = page.get_by_text(re.compile("^(Per-token|Whole-text) model")).first
    expect(design_note).to_be_visible(timeout=PAGE_TIMEOUT)
    projector = classifier.header["projector"]
    t, d = projector["num_projections"], projector["bits_per_projection"]
    expect(design_note).to_contain_text(f"{t} × {d} = {t * d} bits")
    expect(page.locator(".vega-embed .marks >> visible=true").first).to_be_visible(
        timeout=PAGE_TIMEOUT
    )  # the bits grid is drawn
    page.wait_for_timeout(500)
    bits_shot = Path(os.environ.get("TEXTPROJ_SCREENSHOT_BITS") or tmp_path / "app-bits.png")
    page.screenshot(path=bits_shot, full_page=True)
    assert bits_shot.stat().st_size > 10_000
    page.close()
