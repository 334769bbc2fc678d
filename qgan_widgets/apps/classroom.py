"""``python -m qgan_widgets classroom``: the Explorer served to a class from one machine.

One Voila server on one port serves ``notebooks/dashboard.ipynb`` to every student; each page gets
its own kernel. What a class needs beyond ``voila notebook.ipynb`` (all Voila / Jupyter server
settings, plus one page):

- **a warm pool**: ``--pool`` kernels pre-started and pre-rendered (Voila's ``preheat_kernel``), so
  a page's document comes at once instead of after a kernel's start; a kernel a page takes is replaced
  ``--fill-delay`` seconds later (60), not at once, so the refill does not slow the pages still opening;
- **culling**: a kernel whose page was closed (no connection) and that is idle is shut down after
  ``--cull-after`` seconds (``MappingKernelManager.cull_idle_timeout`` with ``cull_connected=False``;
  Voila's own shutdown-on-close request is refused by Voila 0.5, so culling is what frees them), but
  never a kernel no page has connected to yet in its first 3 minutes (a page still loading:
  :mod:`.classroom_kernels`);
- **a cap**: at most ``--max-kernels`` students' kernels at once; the next page gets a friendly
  "the class is full" page (HTTP 503) that retries by itself, rather than an out-of-memory machine;
- **the VAE prepared first**: the Explorer's default latent space (data, VAE, classifier) is prepared
  once before serving (``--no-prepare`` skips it), so students' first Train loads it from the cache
  instead of every kernel training the same VAE at once; ``--latents 2-8`` prepares more sizes (the
  latent size is the qubit count with readout ``z``), so that a student who changes the qubits trains
  at once instead of waiting for a VAE (minutes at full sizes);
- **kernels forked from one process** that has imported TensorFlow and the dashboard
  (:mod:`.classroom_fork`): they share those libraries' memory copy-on-write and start in a fraction
  of a second instead of importing for seconds each (``--no-fork``: every kernel its own process);
- **loopback by default**; bound to any other address it requires a token (``--token``, or one is
  made and printed with the URL to hand out);
- **nothing fetched from the internet**: the page uses the ``qgan`` Voila template
  (``apps/jupyter/voila/templates/qgan``: Voila's lab template with the dashboard's icon font served
  locally instead of Font Awesome from a CDN, which an offline classroom cannot reach).

The load test (:mod:`qgan_widgets.apps.classroom_load`, ``bench classroom``) measures it.
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_PORT = 8866
DEFAULT_MAX_KERNELS = 5  # what 2 cores served in bench classroom; 10 at once left pages without controls
DEFAULT_POOL = 2
DEFAULT_FILL_DELAY = 60.0
"""Seconds before the warm pool starts a kernel to replace one a page took. Voila's default (1 s) made
the refill compete with the pages being opened: 10 pages at once with a pool of 10 rendered in 75 s
with it, their documents in 10 s; a class arrives within a minute, and a later student still finds
the refilled pool."""
DEFAULT_CULL_AFTER = 30  # seconds a closed page's idle kernel is kept
CULL_INTERVAL = 10  # seconds between the culler's checks
CONNECT_GRACE = 180  # seconds a kernel no page has connected to yet is safe from culling
TRAIN_NICE = 10
"""Nice value a classroom kernel's threads take when it starts training (``$QGAN_TRAIN_NICE``, inherited
by the kernels), so that the server and the kernels opening new pages run first: three pages opened
while four kernels trained rendered in 6.0-8.2 s instead of 7.5-13.3 s (two runs each)."""
IOPUB_TIMEOUT = 120
"""Seconds Voila waits for a cell's output after the kernel says the cell is done. Voila's default (4 s,
nbclient's ``iopub_timeout``) dropped the dashboard's output under load: with 10 pages at once on 2
cores, 8 of the 8 pages beyond the warm pool showed no dashboard ("Timeout waiting for IOPub output")."""
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "dashboard.ipynb"
TEMPLATE = "qgan"
"""The Voila template of the dashboard's pages (Voila's lab template, icons served locally)."""
TEMPLATE_ROOT = Path(__file__).resolve().parent / "jupyter"
"""A Jupyter data directory holding ``voila/templates/qgan``: put it on ``JUPYTER_PATH`` (see :func:`voila_env`)."""


def voila_env(env: dict | None = None) -> dict:
    """``env`` (default: this process's) with :data:`TEMPLATE_ROOT` first on ``JUPYTER_PATH``, so that
    ``voila --template=qgan`` finds the template."""
    env = dict(os.environ if env is None else env)
    rest = env.get("JUPYTER_PATH")
    env["JUPYTER_PATH"] = str(TEMPLATE_ROOT) + (os.pathsep + rest if rest else "")
    return env

FULL_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="{retry}">
<title>The class is full</title>
<style>body{{font-family:sans-serif;max-width:36em;margin:4em auto;line-height:1.5}}</style></head>
<body class="qgan-class-full"><h1>The class is full</h1>
<p>All {limit} places of this classroom server are taken. This page tries again by itself every
{retry} seconds; a place frees up about {cull} seconds after someone closes their page.</p>
<p>Teacher: start the server with a larger <code>--max-kernels</code> if the machine has the memory
(about 0.4 GiB with forked kernels, 0.7 without, and a share of a core per student: <code>python -m qgan_widgets bench classroom</code> measures it).</p>
</body></html>"""


def is_loopback(ip: str) -> bool:
    if ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        raise ValueError(f"--ip: {ip!r} is not an IP address (use 127.0.0.1 for this machine only, "
                         f"0.0.0.0 for every interface)") from None


def voila_argv(notebook: Path, port: int, ip: str, max_kernels: int, pool: int, cull_after: int,
               token: str | None, fill_delay: float = DEFAULT_FILL_DELAY) -> list[str]:
    """Voila's command-line settings for a classroom (see the module docstring)."""
    argv = [str(notebook), "--no-browser", f"--port={port}", f"--Voila.ip={ip}", f"--template={TEMPLATE}",
            f"--ClassroomVoila.max_kernels={max_kernels}",
            f"--MappingKernelManager.cull_idle_timeout={cull_after}",
            f"--MappingKernelManager.cull_interval={min(CULL_INTERVAL, cull_after)}",
            "--MappingKernelManager.cull_connected=False", "--MappingKernelManager.cull_busy=False",
            "--VoilaConfiguration.multi_kernel_manager_class="
            "qgan_widgets.apps.classroom_kernels.ClassroomKernelManager",
            f"--ClassroomKernelManager.connect_grace={CONNECT_GRACE}",
            f"--VoilaExecutor.iopub_timeout={IOPUB_TIMEOUT}",
            "--VoilaConfiguration.show_tracebacks=False"]
    if pool > 0:
        argv += ["--VoilaConfiguration.preheat_kernel=True", f"--VoilaConfiguration.default_pool_size={pool}",
                 f"--VoilaKernelManager.fill_delay={fill_delay:g}"]
    if token:
        argv.append(f"--Voila.token={token}")
    return argv


def check_settings(port: int, ip: str, max_kernels: int, pool: int, cull_after: int, token: str | None,
                   fill_delay: float = DEFAULT_FILL_DELAY) -> str | None:
    """Refuse impossible settings with a message naming the option; returns the token to use (one is
    made when the server is bound beyond loopback without one)."""
    if not 0 < port < 65536:
        raise ValueError(f"--port: {port} is not a TCP port (1-65535)")
    if max_kernels < 1:
        raise ValueError(f"--max-kernels: {max_kernels} must be at least 1 (one student)")
    if pool < 0:
        raise ValueError(f"--pool: {pool} must be 0 (no warm kernels) or more")
    if not 0 <= fill_delay <= 3600:
        raise ValueError(f"--fill-delay: {fill_delay:g} s must be from 0 to 3600")
    if cull_after < 5:
        raise ValueError(f"--cull-after: {cull_after} s is too short (a page reconnecting would lose its kernel); "
                         f"use at least 5")
    if token is not None and len(token) < 8:
        raise ValueError("--token: use at least 8 characters (anyone who can reach the port can guess less)")
    if not is_loopback(ip) and not token:
        return secrets.token_urlsafe(16)
    return token


def _ready(task) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None


def ready_in_pool(kernel_manager) -> int:
    """The warm pool's kernels ready to take, counted from the front (a page takes the front one; Voila
    keeps the pool as tasks, and a refill's task waits ``--fill-delay`` before it starts a kernel)."""
    pools = getattr(kernel_manager, "_pools", {})
    name = getattr(kernel_manager, "notebook_path", None)
    ready = 0
    for pool in ([pools.get(name, [])] if name in pools else pools.values()):
        for task in pool:
            if not _ready(task):
                break
            ready += 1
    return ready


def students(kernel_manager) -> int:
    """Kernels serving pages: every kernel but the warm pool's ready ones. A kernel the pool is still
    starting or rendering counts as a student's until it is ready (a page may be refused for those seconds
    and retries), never the other way round: counting the pool's places instead of its ready kernels let
    an eleventh page into a class of ten while the pool waited ``--fill-delay`` to refill. Voila keeps its
    pool as tasks whose result names the kernel (``_pools``, as its own culling check reads it)."""
    ready = set()
    for pool in getattr(kernel_manager, "_pools", {}).values():
        for task in pool:
            if _ready(task):
                ready.add(task.result().get("kernel_id"))
    return sum(1 for kernel_id in kernel_manager.list_kernel_ids() if kernel_id not in ready)


def _classroom_app():
    """The Voila application with the capacity check (imported late: Voila is a server's import)."""
    from traitlets import Int
    from voila.app import Voila
    from voila.tornado.handler import TornadoVoilaHandler

    class ClassroomHandler(TornadoVoilaHandler):
        def initialize(self, max_kernels: int, cull_after: int, **kwargs):
            super().initialize(**kwargs)
            self.max_kernels, self.cull_after = max_kernels, cull_after

        def students(self) -> int:
            return students(self.kernel_manager)

        def should_use_rendered_notebook(self, notebook_data, pool_size, *args, **kwargs):
            # Voila counts the pool's places: a page would wait on a refill still sleeping --fill-delay
            # (64 s documents at 5 students, pool 2). A page takes a kernel only when one is ready.
            ready = ready_in_pool(self.kernel_manager)
            return ready > 0 and super().should_use_rendered_notebook(notebook_data, ready, *args, **kwargs)

        async def get(self, path=None):
            if not path and self.students() >= self.max_kernels:
                self.log.warning("classroom full: %d of %d places taken; refused a page", self.students(),
                                 self.max_kernels)
                self.set_status(503)
                self.set_header("Retry-After", "15")
                self.set_header("Content-Type", "text/html")
                self.finish(FULL_PAGE.format(limit=self.max_kernels, retry=15, cull=self.cull_after))
                return
            return await super().get(path)

    class ClassroomVoila(Voila):
        name = "qgan-classroom"
        max_kernels = Int(DEFAULT_MAX_KERNELS, config=True, help="students' kernels at once; more get 'class full'")

        def init_handlers(self):
            cull = int(self.config.get("MappingKernelManager", {}).get("cull_idle_timeout", DEFAULT_CULL_AFTER))
            out = []
            for handler in super().init_handlers():
                if len(handler) == 3 and handler[1] is TornadoVoilaHandler:
                    handler = (handler[0], ClassroomHandler,
                               {**handler[2], "max_kernels": self.max_kernels, "cull_after": cull})
                out.append(handler)
            return out

    return ClassroomVoila


PREPARE = """
import sys, time
from qgan_widgets.widgets.runner import workspace_for
for size in map(int, sys.argv[1:]):
    t0 = time.perf_counter()
    workspace_for(size)
    print(f"classroom: latent size {size} ready ({time.perf_counter() - t0:.0f} s)", flush=True)
"""


def default_latent() -> int:
    """The latent size of the Explorer's default settings."""
    from qgan_widgets.widgets.state import defaults, latent_dim_of

    return latent_dim_of(defaults())


def max_latent() -> int:
    """The largest latent size the Explorer can ask for (its most qubits, the widest readout)."""
    from qgan_widgets.quantum.circuits import READOUTS, latent_dim_for
    from qgan_widgets.widgets.state import MAX_QUBITS

    return max(latent_dim_for(MAX_QUBITS, readout) for readout in READOUTS)


def parse_latents(spec: str) -> list[int]:
    """``"3"``, ``"2-8"``, ``"2,4,8"`` -> the latent sizes, sorted; ``ValueError`` naming ``--latents``."""
    sizes: set[int] = set()
    top = max_latent()
    for part in str(spec).replace(" ", "").split(","):
        lo, sep, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi if sep else lo)
        except ValueError:
            raise ValueError(f"--latents: {part!r} is not a size or a range like 2-8 (in {spec!r})") from None
        if not 1 <= first <= last <= top:
            raise ValueError(f"--latents: {part!r} must be sizes from 1 to {top}, low to high")
        sizes.update(range(first, last + 1))
    return sorted(sizes)


def prepare_workspaces(latents: list[int] | None = None) -> float:
    """Prepare (or load from the cache) the Explorer's workspace (data, VAE, classifier) for each latent
    size (default: the Explorer's default size) in a child process (the server itself never imports
    TensorFlow). Returns the seconds it took."""
    t0 = time.perf_counter()
    sizes = latents or [default_latent()]
    subprocess.run([sys.executable, "-c", PREPARE, *map(str, sizes)], check=True)
    return time.perf_counter() - t0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port (default %(default)s)")
    p.add_argument("--ip", default="127.0.0.1",
                   help="address to listen on (default %(default)s: this machine only; 0.0.0.0 for a class "
                        "network, which needs a token)")
    p.add_argument("--max-kernels", type=int, default=DEFAULT_MAX_KERNELS,
                   help="students at once; the next page says the class is full (default %(default)s)")
    p.add_argument("--pool", type=int, default=DEFAULT_POOL,
                   help="kernels kept started and rendered for the next pages (default %(default)s)")
    p.add_argument("--fill-delay", type=float, default=DEFAULT_FILL_DELAY,
                   help="seconds before the pool replaces a kernel a page took (default %(default)g: refilling at "
                        "once slows the pages still opening)")
    p.add_argument("--cull-after", type=int, default=DEFAULT_CULL_AFTER,
                   help="seconds a closed page's idle kernel is kept (default %(default)s)")
    p.add_argument("--token", default=None, help="access token (made and printed when --ip is not loopback)")
    p.add_argument("--latents", default=None,
                   help="latent sizes whose VAE to prepare before serving, e.g. 2-8 or 3,6 (latent size = qubits "
                        "with readout z; default: the Explorer's default size); a size not prepared makes the "
                        "first Train that asks for it train a VAE")
    p.add_argument("--no-prepare", action="store_true",
                   help="do not prepare any VAE before serving (each first Train then may)")
    p.add_argument("--notebook", default=str(NOTEBOOK), help="the page to serve (default: the Explorer)")
    p.add_argument("--no-fork", action="store_true",
                   help="start each kernel as its own process instead of forking it from one that has "
                        "imported TensorFlow (more memory and slower starts; for comparison or trouble)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m qgan_widgets classroom",
                                description="Serve the Explorer to a class from this machine (Voila).")
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        token = check_settings(args.port, args.ip, args.max_kernels, args.pool, args.cull_after, args.token,
                               args.fill_delay)
        notebook = Path(args.notebook)
        if not notebook.is_file():
            raise ValueError(f"--notebook: {notebook} does not exist")
        latents = parse_latents(args.latents) if args.latents is not None else None
        if latents and args.no_prepare:
            raise ValueError("--latents names VAEs to prepare, --no-prepare says prepare none: give one of them")
    except ValueError as exc:
        print(f"classroom: {exc}", file=sys.stderr)
        return 2
    host = "127.0.0.1" if is_loopback(args.ip) else args.ip
    url = f"http://{host}:{args.port}/" + (f"?token={token}" if token else "")
    print(f"classroom: serving {notebook.name} at {url} to at most {args.max_kernels} students "
          f"({args.pool} warm kernels, " + ("each its own process" if args.no_fork else
                                             "forked from one process that has imported TensorFlow")
          + f"; a closed page's kernel ends {args.cull_after} s after it goes idle)",
          flush=True)
    if not args.no_prepare:
        which = f"latent sizes {', '.join(map(str, latents))}" if latents else "the default latent size"
        print(f"classroom: preparing the Explorer's VAE and classifier for {which} (cached after the first time; "
              f"minutes per size at full sizes)...", flush=True)
        print(f"classroom: prepared in {prepare_workspaces(latents):.0f} s", flush=True)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    # the kernels inherit this: glibc's per-thread malloc arenas cost a trained kernel ~60 MB more
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    # ... and this: a kernel that trains lowers its threads' priority, so pages open and answer first
    from qgan_widgets.widgets.runner import TRAIN_NICE_ENV

    os.environ.setdefault(TRAIN_NICE_ENV, str(TRAIN_NICE))
    os.environ["JUPYTER_PATH"] = voila_env()["JUPYTER_PATH"]  # the qgan template (read at start-up)
    if not args.no_fork:  # Jupyter's provisioner factory reads this for every kernel it starts
        from qgan_widgets.apps.classroom_fork import PROVISIONER

        os.environ["JUPYTER_DEFAULT_PROVISIONER_NAME"] = PROVISIONER
    _classroom_app().launch_instance(
        argv=voila_argv(notebook, args.port, args.ip, args.max_kernels, args.pool, args.cull_after, token,
                        args.fill_delay))
    return 0
