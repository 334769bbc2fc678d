"""Where a classroom page's render time goes: CPU per process kind while N pages open at once.

    QGAN_FAST=1 python benchmarks/classroom_render_probe.py [--pages 10]

Starts a classroom server (``classroom_load.Server``) with a warm pool of ``pages + 1`` kernels, opens
one page alone, then ``pages`` pages at once in headless Chromium (no Train), and prints for each page
its document and render times with Chromium's own counters (``Performance.getMetrics``: script, layout,
style and task seconds), then the CPU seconds each kind of process used while the pages opened:
Chromium's renderer, browser, GPU (compositing) and utility (network) processes, the classroom server,
its kernels (forked: they carry the fork server's command line), Playwright's driver. The project's
benchmark is ``python -m qgan_widgets bench classroom``; this probe says which side a render waits for.
"""
from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import psutil

from qgan_widgets.apps import classroom_load as cl


def cpu_by_kind() -> dict[int, tuple[str, float]]:
    out = {}
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            used = sum(proc.cpu_times()[:2])
            cmd = " ".join(proc.info["cmdline"] or [])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        name = proc.info["name"] or "?"
        if "chrom" in name:
            kind = "chromium-" + (cmd.split("--type=")[1].split()[0] if "--type=" in cmd else "browser")
        elif "classroom_fork" in cmd or name == "qgan-kernel":
            kind = "kernels"
        elif "classroom" in cmd:
            kind = "classroom server"
        elif name.startswith("node"):
            kind = "playwright driver"
        else:
            continue
        out[proc.pid] = (kind, used)
    return out


async def open_page(browser, url: str):
    context = await browser.new_context(viewport={"width": 1280, "height": 1200})
    page = await context.new_page()
    cdp = await context.new_cdp_session(page)
    await cdp.send("Performance.enable")
    t0 = time.perf_counter()
    await page.goto(url, wait_until="domcontentloaded", timeout=300_000)
    document = time.perf_counter() - t0
    await page.locator("button.qgan-train").wait_for(state="visible", timeout=300_000)
    render = time.perf_counter() - t0
    metrics = {m["name"]: m["value"] for m in (await cdp.send("Performance.getMetrics"))["metrics"]}
    files = await page.evaluate("performance.getEntriesByType('resource').length")
    return context, {"document_s": round(document, 2), "render_s": round(render, 2), "files": files,
                     **{k.lower(): round(metrics[f"{k}Duration"], 2) for k in ("Script", "Layout", "RecalcStyle", "Task")}}


async def main(url: str, pages: int) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=cl.find_chromium(), args=cl.CHROMIUM_ARGS, headless=True)
        context, alone = await open_page(browser, url)
        print("one page alone:", alone, flush=True)
        await context.close()
        await asyncio.sleep(10)
        before, t0 = cpu_by_kind(), time.perf_counter()
        opened = await asyncio.gather(*(open_page(browser, url) for _ in range(pages)))
        wall, after = time.perf_counter() - t0, cpu_by_kind()
        print(f"{pages} pages at once, all rendered in {wall:.1f} s:")
        for context, figures in opened:
            print("  ", figures)
            await context.close()
        used: dict[str, float] = {}
        for pid, (kind, cpu) in after.items():
            used[kind] = used.get(kind, 0.0) + cpu - before.get(pid, (kind, 0.0))[1]
        print(f"CPU seconds while they opened ({2 * wall:.0f} core-seconds on 2 cores):",
              {k: round(v, 1) for k, v in sorted(used.items(), key=lambda kv: -kv[1])})
        await browser.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=10)
    args = parser.parse_args()
    server = cl.Server(Path(tempfile.mkdtemp(prefix="qgan-render-probe-")), max_kernels=args.pages + 2,
                       pool=args.pages + 1, cull_after=30, fill_delay=600)
    try:
        server.wait_listening()
        print(f"server warm after {server.wait_warm(args.pages + 1):.0f} s", flush=True)
        asyncio.run(main(server.url, args.pages))
    finally:
        server.stop()
