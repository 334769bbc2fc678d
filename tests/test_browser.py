"""The classroom web app in a real browser: Voila serves notebooks/dashboard.ipynb on loopback, headless
Chromium (Debian's ``chromium`` package, driven by Playwright) presses Train and sees the FD plot
and the sample grid update, trains a second run with another critic, finds both in the run table,
overlays the first's FD curve and downloads the run through Export. A screenshot goes to ``test-artifacts/dashboard.png`` (gitignored;
``QGAN_TEST_ARTIFACTS`` moves it). Skipped, saying why, when Chromium or Playwright is missing (CI
installs Chromium with apt)."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from qgan_widgets.apps.classroom import IOPUB_TIMEOUT, TEMPLATE, voila_env
from qgan_widgets.apps.classroom_load import CHROMIUM_ARGS, find_chromium, free_port

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "dashboard.ipynb"
ARTIFACTS = Path(os.environ.get("QGAN_TEST_ARTIFACTS", ROOT / "test-artifacts"))


def _chromium() -> str:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Chromium not found (/usr/bin/chromium): install Debian's package with "
                    "`apt-get install -y chromium` (CI does) to run the browser test")
    return chromium


def _wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"Voila exited with code {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"Voila did not listen on 127.0.0.1:{port} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def voila_url(tmp_path):
    """Voila on 127.0.0.1 (a free port, no token: loopback only) with a kernel of this Python."""
    pytest.importorskip("voila", reason="voila is not installed (it is in the pinned stack: `make install`)")
    kernels = tmp_path / "jupyter" / "kernels" / "python3"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (qgan_widgets)", "language": "python"}))
    env = {**voila_env({**os.environ, "JUPYTER_PATH": str(tmp_path / "jupyter")}), "QGAN_FAST": "1",
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "PYTHONUNBUFFERED": "1"}
    port = free_port()
    log = tmp_path / "voila.log"
    cmd = [sys.executable, "-m", "voila", str(NOTEBOOK), "--no-browser", f"--port={port}", f"--template={TEMPLATE}",
           "--Voila.ip=127.0.0.1", "--show_tracebacks=True", f"--VoilaExecutor.iopub_timeout={IOPUB_TIMEOUT}"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        _wait_for_port(port, proc, log)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, ARTIFACTS / "voila.log")


def test_dashboard_trains_in_a_real_browser(voila_url):
    chromium = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (`make install`)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1500})
            page_errors: list[str] = []
            page.on("pageerror", lambda err: page_errors.append(str(err)))
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            page.goto(voila_url, wait_until="domcontentloaded", timeout=120_000)
            train = page.locator("button.qgan-train")
            train.wait_for(state="visible", timeout=120_000)  # the kernel imported TF and ran the cells
            fd, samples = page.locator("img.qgan-fd"), page.locator("img.qgan-samples")
            page.wait_for_selector(".qgan-status-pill[data-status='idle']", timeout=30_000)
            page.wait_for_function(  # the placeholder images are loaded before we take their picture
                "() => ['img.qgan-fd', 'img.qgan-samples'].every(s => { const i = document.querySelector(s); "
                "return i && i.complete && i.naturalWidth > 0; })", timeout=30_000)
            fd_before, samples_before = fd.screenshot(), samples.screenshot()
            # issue 17: offline-safe: every file (icon fonts included) comes from this server
            outside = [u for u in requested if not u.startswith((voila_url, "data:", "blob:"))]
            assert not outside, outside
            icons = page.evaluate("async () => { await document.fonts.ready; return [...document.fonts]"
                                  ".filter(f => /awesome/i.test(f.family)).map(f => f.status); }")
            assert "loaded" in icons, f"no icon font loaded: {icons}"
            assert "Data: STAND-IN" in page.locator(".qgan-info").inner_text()  # named before Train
            title = page.locator(".qgan-title").bounding_box()
            page.locator("button.qgan-projector").click()  # projector mode: everything larger
            page.wait_for_function("() => document.querySelector('.qgan-explorer.qgan-projector') !== null")
            assert page.locator(".qgan-title").bounding_box()["height"] > 1.2 * title["height"]
            page.locator("button.qgan-projector").click()
            page.wait_for_function("() => document.querySelector('.qgan-explorer.qgan-projector') === null")

            train.click()
            page.wait_for_selector(".qgan-progress", timeout=60_000)  # a bar while preparing / compiling
            page.wait_for_selector(".qgan-status-pill[data-status='training']", timeout=150_000)
            assert train.is_disabled()  # locked while training
            page.wait_for_selector(".qgan-status-pill[data-status='completed']", timeout=150_000)
            detail = page.locator(".qgan-status-detail").inner_text()
            final = int(re.search(r"step (\d+) / (\d+)", detail).group(1))
            # the views are drawn in a background thread: wait for the last evaluation's grid
            page.wait_for_function(
                "s => document.querySelector('.qgan-samples-caption') && "
                "document.querySelector('.qgan-samples-caption').innerText.includes(s)",
                arg=f"at step {final}", timeout=30_000)
            page.wait_for_timeout(1500)
            assert fd.screenshot() != fd_before, "the FD plot did not change"
            assert samples.screenshot() != samples_before, "the sample grid did not change"
            assert "FD " in detail
            assert page.locator(".qgan-output .jp-OutputArea-output").count() == 0, \
                page.locator(".qgan-output").inner_text()
            assert not page_errors, page_errors
            assert not train.is_disabled()

            # issue 17: a second run with another critic, the session's table, an overlay, the export
            entry = page.locator(".qgan-entry-critic-width input")
            entry.fill("16")
            entry.press("Enter")
            page.wait_for_function("() => document.querySelector('.qgan-status-detail') !== null")
            page.wait_for_timeout(500)
            train.click()
            page.wait_for_selector(".qgan-status-pill[data-status='training']", timeout=150_000)
            page.wait_for_selector(".qgan-status-pill[data-status='completed']", timeout=150_000)
            page.wait_for_function("() => document.querySelectorAll('.qgan-runs-table tr').length === 3",
                                   timeout=30_000)  # a header and two runs
            table = page.locator(".qgan-runs-table").inner_text()
            assert "#1" in table and "#2" in table and "width 16" in table, table
            page.wait_for_timeout(1500)
            fd_second = fd.screenshot()
            page.locator(".qgan-compare-overlay select").select_option(index=0)  # run #1 over run #2
            page.wait_for_timeout(2500)
            assert fd.screenshot() != fd_second, "the overlay did not change the FD plot"
            page.locator("button.qgan-export").click()
            link = page.locator("a.qgan-download")
            link.wait_for(state="visible", timeout=30_000)
            with page.expect_download(timeout=30_000) as info:
                link.click()
            saved = ARTIFACTS / "exported-run.zip"
            info.value.save_as(str(saved))
            names = zipfile.ZipFile(saved).namelist()
            assert {"run.json", "config.json", "metrics.csv", "evals.csv"} <= set(names), names
            assert not page_errors, page_errors
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
