"""The classroom server (``python -m qgan_widgets classroom``): its settings, and a load test of five
students opening and training at once in headless Chromium (issue 17)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from qgan_widgets.apps import classroom
from qgan_widgets.apps.classroom_load import find_chromium, format_result, percentile, run_load

ARTIFACTS = Path(os.environ.get("QGAN_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))


def test_loopback_needs_no_token_and_other_addresses_get_one():
    assert classroom.check_settings(8866, "127.0.0.1", 10, 2, 30, None) is None
    assert classroom.check_settings(8866, "::1", 10, 2, 30, None) is None
    made = classroom.check_settings(8866, "0.0.0.0", 10, 2, 30, None)
    assert made and len(made) >= 16
    assert classroom.check_settings(8866, "0.0.0.0", 10, 2, 30, "my-class-token") == "my-class-token"


@pytest.mark.parametrize("kwargs, option", [
    ({"port": 0}, "--port"), ({"port": 70000}, "--port"), ({"max_kernels": 0}, "--max-kernels"),
    ({"pool": -1}, "--pool"), ({"cull_after": 1}, "--cull-after"), ({"token": "short"}, "--token"),
    ({"ip": "class-room"}, "--ip"), ({"fill_delay": -1.0}, "--fill-delay"),
])
def test_impossible_settings_are_refused_naming_the_option(kwargs, option):
    settings = {"port": 8866, "ip": "127.0.0.1", "max_kernels": 10, "pool": 2, "cull_after": 30, "token": None,
                **kwargs}
    with pytest.raises(ValueError, match=option):
        classroom.check_settings(**settings)


def test_the_command_refuses_bad_input_without_starting(capsys):
    assert classroom.main(["--max-kernels", "0"]) == 2
    assert "--max-kernels" in capsys.readouterr().err
    assert classroom.main(["--notebook", "/nonexistent/x.ipynb"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_the_classroom_has_its_kernels_train_behind_the_pages(monkeypatch):
    from qgan_widgets.widgets.runner import TRAIN_NICE_ENV

    seen = {}

    class FakeVoila:
        @staticmethod
        def launch_instance(argv):
            seen["nice"], seen["argv"] = os.environ.get(TRAIN_NICE_ENV), argv

    env = {k: v for k, v in os.environ.items() if k != TRAIN_NICE_ENV}
    monkeypatch.setattr(os, "environ", env)  # main sets variables for the server: keep them out of this process
    monkeypatch.setattr(classroom, "_classroom_app", lambda: FakeVoila)
    assert classroom.main(["--no-prepare", "--port", "8999"]) == 0
    assert seen["nice"] == str(classroom.TRAIN_NICE) and "--port=8999" in seen["argv"]
    env[TRAIN_NICE_ENV] = "0"  # a teacher's own setting is kept
    classroom.main(["--no-prepare"])
    assert seen["nice"] == "0"


def test_a_kernel_that_trains_lowers_the_priority_of_all_its_threads():
    """In a subprocess: a raised nice value cannot be lowered again (no privileges assumed)."""
    import subprocess
    import sys

    probe = """
import os, threading
from qgan_widgets.widgets.runner import lower_priority, ExplorerError
def nices():
    return sorted({os.getpriority(os.PRIO_PROCESS, int(t)) for t in os.listdir('/proc/self/task')})
stop = threading.Event()
before = threading.Thread(target=stop.wait); before.start()
assert lower_priority({}) is None and nices() == [0]
for bad in ('ten', '25', '-5'):
    try:
        lower_priority({'QGAN_TRAIN_NICE': bad}); raise SystemExit('accepted ' + bad)
    except ExplorerError as exc:
        assert 'QGAN_TRAIN_NICE' in str(exc) and '0 to 19' in str(exc), exc
assert nices() == [0]
assert lower_priority({'QGAN_TRAIN_NICE': '7'}) == 7
after = threading.Thread(target=stop.wait); after.start()
print(nices(), flush=True)
stop.set()
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[7]"  # the thread started before, this one and the one started after


def test_students_are_the_kernels_beyond_the_ready_pool():
    import asyncio

    async def pooled(kernel_id):
        return {"kernel_id": kernel_id}

    class Manager:  # Voila's pool: tasks whose result names the kernel, pending while it waits to refill
        def __init__(self, kernels, pools):
            self._kernels, self._pools = kernels, pools

        def list_kernel_ids(self):
            return list(self._kernels)

    async def check():
        ready = asyncio.ensure_future(pooled("p1"))
        waiting = asyncio.ensure_future(asyncio.sleep(60))  # the refill, waiting --fill-delay
        await asyncio.sleep(0)
        km = Manager(["s1", "s2", "p1"], {"dashboard.ipynb": [ready, waiting]})
        assert classroom.students(km) == 2  # not 3 - 2 places = 1
        assert classroom.students(Manager(["s1"], {})) == 1  # no pool (--pool 0)
        assert classroom.ready_in_pool(km) == 1  # a page takes "p1"; the next one gets a fresh kernel
        assert classroom.ready_in_pool(Manager(["s1"], {"dashboard.ipynb": [waiting, ready]})) == 0  # front waits
        waiting.cancel()

    asyncio.run(check())


def test_latent_sizes_to_prepare_are_read_as_sizes_and_ranges():
    assert classroom.parse_latents("3") == [3]
    assert classroom.parse_latents("2-5") == [2, 3, 4, 5]
    assert classroom.parse_latents("8, 2-3,3") == [2, 3, 8]
    assert classroom.default_latent() == 3  # the Explorer's default: 3 qubits, readout z
    for bad in ("0", "25", "5-2", "two", "2-", ""):
        with pytest.raises(ValueError, match="--latents"):
            classroom.parse_latents(bad)


def test_latents_and_no_prepare_together_are_refused(capsys):
    assert classroom.main(["--latents", "2-4", "--no-prepare"]) == 2
    assert "--latents" in capsys.readouterr().err
    assert classroom.main(["--latents", "2-40"]) == 2
    assert "from 1 to 24" in capsys.readouterr().err


def test_voila_settings_cull_closed_pages_preheat_and_cap():
    argv = classroom.voila_argv(Path("nb.ipynb"), 9000, "127.0.0.1", 7, 3, 30, None)
    assert "--MappingKernelManager.cull_idle_timeout=30" in argv
    assert "--MappingKernelManager.cull_connected=False" in argv  # an open page keeps its kernel
    assert any(a.endswith("classroom_kernels.ClassroomKernelManager") for a in argv)  # and a loading one
    assert "--VoilaConfiguration.preheat_kernel=True" in argv and "--VoilaConfiguration.default_pool_size=3" in argv
    assert f"--VoilaKernelManager.fill_delay={classroom.DEFAULT_FILL_DELAY:g}" in argv  # no refill while a class arrives
    assert "--ClassroomVoila.max_kernels=7" in argv and "--Voila.ip=127.0.0.1" in argv
    # Voila's 4 s wait for a cell's output dropped the dashboard from 8 of 10 pages opened at once
    assert f"--VoilaExecutor.iopub_timeout={classroom.IOPUB_TIMEOUT}" in argv and classroom.IOPUB_TIMEOUT >= 60
    assert not any("token" in a for a in argv)
    no_pool = classroom.voila_argv(Path("nb.ipynb"), 9000, "0.0.0.0", 7, 0, 30, "tok-123456")
    assert not any("preheat" in a for a in no_pool) and "--Voila.token=tok-123456" in no_pool


def test_the_page_template_serves_its_icons_and_fetches_nothing_from_the_internet():
    import re
    import tomllib
    from fnmatch import fnmatch

    template = classroom.TEMPLATE_ROOT / "voila" / "templates" / classroom.TEMPLATE
    files = sorted(p for p in template.rglob("*") if p.is_file())
    page = (template / "index.html.j2").read_text()
    assert "http" not in page.split("-#}", 1)[1]  # below the comment: no link anywhere
    # Voila's loading logo spins at 60 frames a second: ten pages loading at once spent 3.5 core-s compositing
    # it; the page overrides it (after Voila's CSS) with a few steps a second, and none under reduced motion
    spinner = page.split("qgan_spinner.css()", 1)[1]
    assert re.search(r"\.spinner \{ animation: rotation [\d.]+s steps\(\d\) infinite; \}", spinner)
    assert re.search(r"prefers-reduced-motion: reduce\) \{ \.spinner \{ animation: none; \}", spinner)
    css = (template / "static" / "qgan-icons.css").read_text()
    fonts = re.findall(r'url\("([^"]+)"\)', css)
    assert fonts and all((template / "static" / f).stat().st_size > 10_000 for f in fonts)
    explorer = (Path(classroom.__file__).parents[1] / "widgets" / "explorer.py").read_text()
    for icon in set(re.findall(r'icon="([a-z-]+)"', explorer)):  # every button's icon has a glyph
        assert f".fa-{icon}:before" in css, icon
    # the wheel carries every template file (package data), not only an editable checkout
    patterns = tomllib.loads((Path(classroom.__file__).parents[2] / "pyproject.toml").read_text())
    patterns = patterns["tool"]["setuptools"]["package-data"]["qgan_widgets.apps"]
    apps = Path(classroom.__file__).parent
    for f in files:
        assert any(fnmatch(str(f.relative_to(apps)), p) for p in patterns), f
    assert f"--template={classroom.TEMPLATE}" in classroom.voila_argv(Path("nb.ipynb"), 9000, "127.0.0.1", 7, 3, 30, None)
    env = classroom.voila_env({"JUPYTER_PATH": "/elsewhere"})
    assert env["JUPYTER_PATH"] == f"{classroom.TEMPLATE_ROOT}{os.pathsep}/elsewhere"
    assert classroom.voila_env({})["JUPYTER_PATH"] == str(classroom.TEMPLATE_ROOT)


def test_the_load_counts_cpu_from_when_sampling_starts_not_from_the_servers_start_up():
    import subprocess
    import sys
    import time

    from qgan_widgets.apps.classroom_load import _Sampler

    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.0: pass\nprint('done', flush=True)\ntime.sleep(30)"
    server = subprocess.Popen([sys.executable, "-c", burn], stdout=subprocess.PIPE, text=True)
    try:
        sampler = _Sampler(server.pid)  # made before the "server" warms up, as run_load does
        assert server.stdout.readline().strip() == "done"  # 1 s of CPU spent warming up
        sampler.start()
        time.sleep(1.0)  # the "pages": the server is idle
        sampler.stop()
        assert sampler.cpu["server"] < 0.3  # before: the warm-up's second was counted to the pages
    finally:
        server.kill()
        server.wait()


def test_percentile_interpolates():
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) == 3.0
    assert percentile([1.0, 2.0], 0.95) == pytest.approx(1.95)
    assert percentile([], 0.5) != percentile([], 0.5)  # nan


@pytest.mark.browser
@pytest.mark.slow
def test_five_students_open_train_and_leave(tmp_path):
    """Five pages at once on a classroom server capped at five: all render and train, the sixth gets
    'the class is full', and every student's kernel is culled within 60 s of the pages closing."""
    if find_chromium() is None:
        pytest.skip("Chromium not found (/usr/bin/chromium): `apt-get install -y chromium` (CI does)")
    pytest.importorskip("playwright.async_api", reason="playwright is not installed (`make install`)")
    pytest.importorskip("voila", reason="voila is not installed (`make install`)")
    result = run_load(pages=5, train=True, pool=2, cull_after=30, wait_gone=60.0, timeout_s=240.0,
                      workdir=tmp_path, say=print)
    print(format_result(result))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "classroom-load.json").write_text(json.dumps(result, indent=1))
    assert len(result["renders"]) == 5 and len(result["first_samples"]) == 5
    assert result["full_refused"], "a sixth page was not told the class is full"
    assert result["kernels_left"] == 0, (result["kernels_left"], (tmp_path / "classroom.log").read_text()[-3000:])
    assert not result["page_errors"], result["page_errors"]
    assert result["peak_kernels"] >= 5
    assert result["forked_at_warm"] == 2  # the warm pool's kernels came from the fork server
    assert 0 < result["peak_pss_gib"] < 20


def test_a_kernel_no_page_has_reached_is_not_culled_during_its_grace(monkeypatch):
    """Ten pages at once on two cores: a kernel could be culled before its page connected (measured)."""
    import asyncio
    import time

    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

    from qgan_widgets.apps.classroom_kernels import ClassroomKernelManager

    culled = []

    async def jupyters_rule(self, kernel_id):
        culled.append(kernel_id)

    monkeypatch.setattr(AsyncMappingKernelManager, "cull_kernel_if_idle", jupyters_rule)
    km = ClassroomKernelManager(connect_grace=100.0)
    km._started["k1"] = km._started["k2"] = time.monotonic()
    km.notify_connect("k2")
    asyncio.run(km.cull_kernel_if_idle("k1"))  # never connected, young: kept
    asyncio.run(km.cull_kernel_if_idle("k2"))  # its page came: Jupyter's rule decides
    km._started["k1"] -= 200.0
    asyncio.run(km.cull_kernel_if_idle("k1"))  # never connected but past the grace: Jupyter's rule
    assert culled == ["k2", "k1"]


def test_a_closed_pages_kernel_is_culled_after_the_timeout_even_while_it_trains(monkeypatch):
    """A run's progress messages keep a kernel 'active', so Jupyter's rule never culled a kernel whose page
    closed mid-run; the page's absence for the timeout does."""
    import asyncio

    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

    from qgan_widgets.apps.classroom_kernels import ClassroomKernelManager

    events = []

    async def jupyters_rule(self, kernel_id):  # an active kernel: Jupyter's rule keeps it
        events.append(("active, kept", kernel_id))

    async def shutdown(self, kernel_id, now=False, restart=False):
        events.append(("shut down", kernel_id))

    monkeypatch.setattr(AsyncMappingKernelManager, "cull_kernel_if_idle", jupyters_rule)
    monkeypatch.setattr(AsyncMappingKernelManager, "shutdown_kernel", shutdown)
    km = ClassroomKernelManager(connect_grace=100.0, cull_idle_timeout=30)
    for k in ("open", "closed"):
        km._kernels[k], km._kernel_connections[k], km._started[k] = object(), 0, time.monotonic()
        km.notify_connect(k)
    km.notify_disconnect("closed")
    asyncio.run(km.cull_kernel_if_idle("closed"))  # closed just now: Jupyter's rule
    km._page_left["closed"] -= 31.0  # 31 s later
    asyncio.run(km.cull_kernel_if_idle("open"))  # its page is open: Jupyter's rule
    asyncio.run(km.cull_kernel_if_idle("closed"))
    assert events == [("active, kept", "closed"), ("active, kept", "open"), ("shut down", "closed")]
    km.notify_connect("closed")  # a page that comes back before the culler: nothing to cull
    assert km.page_gone_for("closed") is None


def test_the_bench_reports_a_class_size_the_machine_cannot_serve_and_goes_on(monkeypatch, tmp_path, capsys):
    import argparse

    from qgan_widgets.apps import classroom_load

    def fake_run_load(n, train=True, pool=2, fill_delay=None, fork=True):
        assert fork is False  # --no-fork reaches the server
        if n == 10:
            raise RuntimeError("no Train button 266 s after opening the page (HTTP 200)\n--- log ---")
        return {"pages": n, "pool": pool, "cull_after_s": 30, "render_p50_s": 1.0, "render_p95_s": 2.0,
                "first_samples_p50_s": 3.0, "first_samples_p95_s": 4.0, "peak_pss_gib": 1.0, "peak_kernels": n + pool,
                "full_refused": True, "kernels_left": 0, "students_gone_after_s": 40.0,
                "document_p50_s": 0.5, "document_p95_s": 0.9, "load_s": 60.0, "cpu_server_s": 50.0,
                "cpu_browser_s": 40.0, "cores": 2}

    monkeypatch.setattr(classroom_load, "run_load", fake_run_load)
    out = tmp_path / "rows.json"
    args = argparse.Namespace(pages="5,10,3", pool=2, no_train=False, json=str(out), fill_delay=None, no_fork=True)
    assert classroom_load.classroom_main(args) == 0
    text = capsys.readouterr().out
    assert "10 students: FAILED: no Train button 266 s" in text and "3 students (2 warm kernels)" in text
    assert "server and kernels 50 s, browsers 40 s, of 120 core-seconds" in text
    rows = json.loads(out.read_text())
    assert [r["pages"] for r in rows] == [5, 10, 3] and "failed" in rows[1] and "failed" not in rows[0]
    with pytest.raises(ValueError, match="--pages"):
        classroom_load.classroom_main(argparse.Namespace(pages="five", pool=2, no_train=False, json=None,
                                                         fill_delay=None))


def test_the_explorer_bench_reads_settings_and_judges_the_goal():
    from qgan_widgets.apps import first_samples as fs

    assert fs.parse_settings("3x2, 8X8") == [(3, 2), (8, 8)]
    for bad in ("3", "13x2", "3x9", "0x1", "axb"):
        with pytest.raises(ValueError, match="--settings"):
            fs.parse_settings(bad)
    row = {"num_qubits": 8, "num_layers": 8, "first_samples_s": 9.5}
    assert " met; worst 9.5 s at 8 qubits" in fs.verdict([row, {**row, "num_qubits": 12, "first_samples_s": 30.0}])
    assert "NOT met" in fs.verdict([{**row, "first_samples_s": 10.5}])


@pytest.mark.slow
def test_the_explorer_bench_times_train_to_first_samples():
    from qgan_widgets.apps import first_samples as fs

    result = fs.measure([(2, 1), (2, 1)], say=lambda *_: None)
    first, again = result["rows"]
    assert not first["shape_seen_before"] and again["shape_seen_before"]
    assert fs.format_row(first).startswith("   2 qubits x 1 layer: first step")
    for row in (first, again):
        assert 0 < row["first_step_s"] <= row["first_samples_s"] < 120, row
