"""``bench classroom``: N students open the classroom server at once and press Train.

Starts ``python -m qgan_widgets classroom`` on a free loopback port (its own Jupyter paths, so it
runs beside any other Voila on the machine), opens N pages at once in headless Chromium (one
browser, N contexts, Playwright's async API), and measures:

``render_s``         page request -> the Train button is visible (the kernel ran the dashboard)
``document_s``       page request -> the page's document has arrived (the server's part of a render:
                     Voila has run the page's cells; the rest is the browser drawing the widgets)
``first_samples_s``  Train pressed -> the first sample grid is drawn ("at step" in its caption)
``peak_pss_gib``     proportional set size summed over the server and all its kernels (shared
                     libraries counted once), sampled every half second, peak
``full_refused``     whether a page beyond ``max_kernels`` got the "class is full" page (HTTP 503)
``kernels_left``     kernels still running ``wait_gone`` seconds after every page was closed
``cpu_server_s``, ``cpu_browser_s``  CPU seconds used while the pages loaded and trained by the server
                     and its kernels, and by the browsers (Chromium runs on the same cores here; a
                     class's browsers run on the students' own machines)

Figures only: :func:`run_load` returns them and the test suite asserts the service works (every page
renders and trains, the full page, no kernel left), not how fast.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def find_chromium() -> str | None:
    for candidate in (os.environ.get("QGAN_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tree(pid: int) -> list:
    """Process ``pid`` and its descendants (psutil), or [] when it has ended."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _is_forked_kernel(proc) -> bool:
    """A kernel forked by the fork server: it has the fork server's command line and its own name."""
    import psutil

    from qgan_widgets.apps.classroom_fork import KERNEL_NAME  # here: the module imports jupyter_client

    try:
        return proc.name() == KERNEL_NAME
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _is_kernel(proc) -> bool:
    import psutil

    try:
        return _is_forked_kernel(proc) or any("ipykernel" in part for part in proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def tree_pss(pid: int) -> tuple[float, int]:
    """(PSS in bytes summed over process ``pid`` and its descendants, number of kernels among them)."""
    import psutil

    total, kernels = 0.0, 0
    for proc in _tree(pid):
        try:
            total += proc.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        kernels += _is_kernel(proc)
    return total, kernels


class Server:
    """The classroom server in a subprocess with its own Jupyter paths and a kernel of this Python."""

    def __init__(self, workdir: Path, max_kernels: int, pool: int, cull_after: int, fill_delay: float | None = None,
                 fork: bool = True):
        self.workdir, self.port = Path(workdir), free_port()
        kernels = self.workdir / "jupyter" / "kernels" / "python3"
        kernels.mkdir(parents=True, exist_ok=True)
        (kernels / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (qgan_widgets)", "language": "python"}))
        env = {**os.environ, "QGAN_FAST": "1", "JUPYTER_PATH": str(self.workdir / "jupyter"),
               "JUPYTER_CONFIG_DIR": str(self.workdir / "config"),
               "JUPYTER_RUNTIME_DIR": str(self.workdir / "runtime"), "PYTHONUNBUFFERED": "1"}
        self.log = self.workdir / "classroom.log"
        cmd = [sys.executable, "-m", "qgan_widgets", "classroom", f"--port={self.port}",
               f"--max-kernels={max_kernels}", f"--pool={pool}", f"--cull-after={cull_after}"]
        if fill_delay is not None:
            cmd.append(f"--fill-delay={fill_delay:g}")
        if not fork:
            cmd.append("--no-fork")
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(cmd, cwd=self.workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}/"

    def wait_listening(self, timeout: float = 400.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the classroom server exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the classroom server did not listen within {timeout:.0f} s:\n{self.tail()}")

    def wait_warm(self, kernels: int, timeout: float = 180.0) -> float:
        """Wait until ``kernels`` kernels run and the server's processes are quiet (the warm pool has
        imported and rendered the dashboard): what a class meets when the teacher started the server
        beforehand. Returns the seconds waited."""
        import psutil

        t0 = time.monotonic()
        quiet_since, seen = None, {}  # cpu_percent needs the same Process object between calls
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the classroom server exited ({self.proc.returncode}):\n{self.tail()}")
            busy, procs = 0.0, _tree(self.proc.pid)
            for p in procs:
                if p.pid not in seen:
                    seen[p.pid] = p
                    busy += 100.0  # new: not yet measured
                try:
                    busy += seen[p.pid].cpu_percent(interval=None)
                except psutil.NoSuchProcess:
                    busy += 100.0
            if sum(map(_is_kernel, procs)) >= kernels and busy < 10.0:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= 2.0:
                    break
            else:
                quiet_since = None
            time.sleep(0.5)
        return time.monotonic() - t0

    def kernels(self) -> int:
        return sum(map(_is_kernel, _tree(self.proc.pid)))

    def forked_kernels(self) -> int:
        """Kernels forked by the fork server, of :meth:`kernels`."""
        return sum(map(_is_forked_kernel, _tree(self.proc.pid)))

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text()[-n:] if self.log.exists() else ""

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


class _Sampler(threading.Thread):
    """Twice a second: the peak PSS and kernel count of the server's process tree, and the CPU time used
    since the sampler started by that tree (``cpu["server"]``) and by this process's other descendants,
    Playwright's driver and Chromium (``cpu["browser"]``): on one machine the browsers take cores that
    a class's own laptops would bring."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.peak_kernels, self._halt = pid, 0.0, 0, threading.Event()
        self._used: dict[int, tuple[str, float]] = {}
        self._base: dict[int, float] = {}

    def start(self):
        """Start sampling. CPU is counted from now, not from when the sampler was made: the server warms up
        in between, and its warm pool's start-up is not the pages' load."""
        self._base = {pid: used for pid, (_, used) in self._cpu_now().items()}
        super().start()

    def _cpu_now(self) -> dict[int, tuple[str, float]]:
        import psutil

        server = {proc.pid for proc in _tree(self.pid)}
        now = {}
        for proc in psutil.Process().children(recursive=True):
            try:
                times = proc.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            now[proc.pid] = ("server" if proc.pid in server else "browser", times.user + times.system)
        return now

    @property
    def cpu(self) -> dict[str, float]:
        """CPU seconds used since the start, by side (a process is counted to its last sample)."""
        out = {"server": 0.0, "browser": 0.0}
        for pid, (side, used) in self._used.items():
            out[side] += max(0.0, used - self._base.get(pid, 0.0))
        return out

    def run(self):
        while not self._halt.is_set():
            pss, kernels = tree_pss(self.pid)
            self.peak, self.peak_kernels = max(self.peak, pss), max(self.peak_kernels, kernels)
            self._used.update(self._cpu_now())
            self._halt.wait(0.5)

    def stop(self):
        self._halt.set()
        self.join(5)


async def _student(browser, url: str, train: bool, timeout_s: float) -> dict:
    context = await browser.new_context(viewport={"width": 1280, "height": 1200})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    console: list[str] = []  # what the page's scripts said: the first clue when a page does not render
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"[:300])
            if msg.type in ("error", "warning") else None)
    out = {"errors": errors}
    t0 = time.perf_counter()
    response = await page.goto(url, wait_until="domcontentloaded", timeout=timeout_s * 1000)
    out["document_s"] = time.perf_counter() - t0  # the server's part: Voila has run the page's cells
    try:
        await page.locator("button.qgan-train").wait_for(state="visible", timeout=timeout_s * 1000)
    except Exception as exc:  # say what the page showed instead
        text = (await page.locator("body").inner_text())[-600:]
        said = "; its console said: " + " | ".join(console[-8:]) if console else ""
        raise RuntimeError(f"no Train button {time.perf_counter() - t0:.0f} s after opening the page (HTTP "
                           f"{response.status if response else '?'}); it showed: {text!r}{said}") from exc
    out["render_s"] = time.perf_counter() - t0
    if train:
        await page.wait_for_selector(".qgan-status-pill[data-status='idle']", timeout=timeout_s * 1000)
        t1 = time.perf_counter()
        await page.locator("button.qgan-train").click(timeout=timeout_s * 1000)  # 20 pages on 2 cores: > 30 s
        try:
            await page.wait_for_function(
                "() => { const c = document.querySelector('.qgan-samples-caption'); "
                "return c && c.innerText.includes('at step'); }", timeout=timeout_s * 1000)
            out["first_samples_s"] = time.perf_counter() - t1
        except Exception as exc:  # say what the page showed instead
            status = await page.locator(".qgan-status-pill, .qgan-status-detail, .qgan-output").all_inner_texts()
            errors.append(f"no samples {time.perf_counter() - t1:.0f} s after Train ({type(exc).__name__}); "
                          f"the page said: {' | '.join(status)[:500]}")
    out["context"] = context
    return out


async def _load(chromium: str, url: str, pages: int, train: bool, timeout_s: float) -> dict:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            students = await asyncio.gather(*(_student(browser, url, train, timeout_s) for _ in range(pages)))
            context = await browser.new_context()  # one page more than the cap
            response = await (await context.new_page()).goto(url, timeout=timeout_s * 1000)
            full = {"status": response.status, "text": await response.text()}
            await context.close()
            for s in students:
                await s.pop("context").close()
            return {"students": students, "full": full}
        finally:
            await browser.close()


def percentile(values, q: float) -> float:
    """The ``q`` quantile (0-1, linear interpolation) of ``values``; nan when there are none."""
    return float(np.quantile(values, q)) if len(values) else float("nan")


def run_load(pages: int = 5, train: bool = True, pool: int = 2, cull_after: int = 30, wait_gone: float = 60.0,
             timeout_s: float = 300.0, workdir: str | Path | None = None, say=print,
             fill_delay: float | None = None, fork: bool = True) -> dict:
    """Start a classroom server (kernels forked from one process unless ``fork`` is False) capped at
    ``pages`` students, open ``pages`` pages at once (and press Train on each if ``train``), ask for one
    page more (it must be refused as full), close them all and wait up to ``wait_gone`` s for every
    student's kernel to be culled. Returns the figures (see the module
    docstring) plus ``renders``, ``first_samples``, ``page_errors`` and the server's log tail on failure."""
    chromium = find_chromium()
    if chromium is None:
        raise RuntimeError("Chromium not found (/usr/bin/chromium or $QGAN_CHROMIUM): "
                           "`apt-get install -y chromium`")
    own = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="qgan-classroom-") if own else workdir)
    server = Server(workdir, max_kernels=pages, pool=pool, cull_after=cull_after, fill_delay=fill_delay, fork=fork)
    sampler = _Sampler(server.proc.pid)
    try:
        server.wait_listening()  # after the default VAE is prepared (loaded when cached)
        warm_s = server.wait_warm(pool)
        forked_warm = server.forked_kernels()
        say(f"  server warm ({pool} kernels rendered, {forked_warm} of them forked) after {warm_s:.0f} s")
        sampler.start()
        t0 = time.perf_counter()
        result = asyncio.run(_load(chromium, server.url, pages, train, timeout_s))
        load_s = time.perf_counter() - t0
        say(f"  {pages} pages rendered{' and trained' if train else ''} in {load_s:.1f} s")
        cpu = sampler.cpu
        closed = time.perf_counter()
        left = server.kernels()
        while time.perf_counter() - closed < wait_gone:
            left = server.kernels()
            if left <= pool:
                break
            time.sleep(1.0)
        gone_s = time.perf_counter() - closed
    except Exception as exc:
        raise RuntimeError(f"{exc}\n--- classroom server log ---\n{server.tail()}") from exc
    finally:
        sampler.stop()
        server.stop()
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    renders = [s["render_s"] for s in result["students"]]
    documents = [s["document_s"] for s in result["students"]]
    firsts = [s["first_samples_s"] for s in result["students"] if "first_samples_s" in s]
    full = result["full"]
    return {
        "pages": pages, "pool": pool, "forked_kernels": fork, "forked_at_warm": forked_warm,
        "cull_after_s": cull_after, "warm_after_s": warm_s, "fill_delay_s": fill_delay,
        "render_p50_s": percentile(renders, 0.5), "render_p95_s": percentile(renders, 0.95),
        "document_p50_s": percentile(documents, 0.5), "document_p95_s": percentile(documents, 0.95),
        "load_s": load_s, "cpu_server_s": cpu["server"], "cpu_browser_s": cpu["browser"],
        "cores": os.cpu_count(),
        "first_samples_p50_s": percentile(firsts, 0.5), "first_samples_p95_s": percentile(firsts, 0.95),
        "peak_pss_gib": sampler.peak / 2**30, "peak_kernels": sampler.peak_kernels,
        "full_refused": full.get("status") == 503 and "class is full" in full.get("text", ""),
        "kernels_left": max(0, left - pool), "students_gone_after_s": gone_s,
        "renders": renders, "first_samples": firsts,
        "page_errors": [e for s in result["students"] for e in s["errors"]],
    }


def format_result(r: dict) -> str:
    return (f"  {r['pages']} students ({r['pool']} warm kernels): render p50 {r['render_p50_s']:.1f} s, "
            f"p95 {r['render_p95_s']:.1f} s; first samples after Train p50 {r['first_samples_p50_s']:.1f} s, "
            f"p95 {r['first_samples_p95_s']:.1f} s; peak PSS {r['peak_pss_gib']:.2f} GiB over "
            f"{r['peak_kernels']} kernels; page {r['pages'] + 1} refused as full: {r['full_refused']}; "
            f"students' kernels left {r['kernels_left']} ({r['students_gone_after_s']:.0f} s after closing, "
            f"cull after {r['cull_after_s']} s)\n"
            f"    page document (the server's part of a render) p50 {r['document_p50_s']:.1f} s, "
            f"p95 {r['document_p95_s']:.1f} s; CPU in those {r['load_s']:.0f} s: server and kernels "
            f"{r['cpu_server_s']:.0f} s, browsers {r['cpu_browser_s']:.0f} s, of "
            f"{r['load_s'] * (r['cores'] or 1):.0f} core-seconds")


def add_parser(sub) -> None:
    p = sub.add_parser("classroom", help="N students open the classroom server at once and train (Chromium)")
    p.add_argument("--pages", default="5,10", help="comma-separated numbers of students (default %(default)s)")
    p.add_argument("--pool", type=int, default=2, help="warm kernels (default %(default)s)")
    p.add_argument("--fill-delay", type=float, default=None,
                   help="seconds before the pool replaces a kernel (default: the classroom's)")
    p.add_argument("--no-train", action="store_true", help="only open the pages")
    p.add_argument("--no-fork", action="store_true", help="the classroom's --no-fork: each kernel its own process")
    p.add_argument("--json", help="write one object per run to this JSON file")


def classroom_main(args) -> int:
    try:
        counts = [int(v) for v in str(args.pages).split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--pages: expected comma-separated integers, got {args.pages!r}") from None
    if not counts or min(counts) < 1 or args.pool < 0:
        raise ValueError("--pages must be >= 1 and --pool >= 0")
    from qgan_widgets.apps.bench import machine_summary

    print("bench classroom: students opening the Explorer at once on a classroom server (headless Chromium)")
    print(machine_summary())
    rows = []
    for n in counts:  # a class size the machine cannot serve is a result, not the end of the benchmark
        try:
            rows.append(run_load(n, train=not args.no_train, pool=args.pool, fill_delay=args.fill_delay,
                                 fork=not args.no_fork))
            print(format_result(rows[-1]), flush=True)
        except RuntimeError as exc:
            rows.append({"pages": n, "pool": args.pool, "failed": str(exc)})
            print(f"  {n} students: FAILED: {str(exc).splitlines()[0]}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
        print(f"wrote {len(rows)} rows to {args.json}")
    return 0
