"""Classroom kernels forked from one process that has already imported TensorFlow (copy-on-write).

Every kernel of the classroom imports the same libraries: TensorFlow, Cirq, ipywidgets, matplotlib
and this package. Started as separate processes, each holds its own private copy of those libraries'
relocated code and data (~0.27 GiB of TensorFlow alone) and spends seconds of a shared core importing
them. A *fork server* imports them once; each kernel is then ``os.fork()``-ed from it and shares
those pages with it and with every other kernel until it writes to them (on Linux this is what
``multiprocessing``'s forkserver does for workers; here it serves Jupyter kernels). Forked, ten
students' kernels and the server took 4.99 GiB (PSS) instead of 7.82 GiB, and a page's document came
in 23 s instead of 51 s (``bench classroom --pages 10``, 2-core EPYC; README).

- :func:`serve` is the fork server (``python -m qgan_widgets.apps.classroom_fork SOCKET``): it imports
  :data:`PRELOAD` without running a TensorFlow op (TensorFlow's thread pools and XLA start at the first
  op, and a forked child inherits no threads: a kernel forked after an op hangs at its first XLA
  program), listens on a Unix socket, and for each request forks a child that becomes an ipykernel
  with the connection file, environment and working directory the server asked for.
- :class:`ForkedProvisioner` is the Jupyter kernel provisioner (entry point ``qgan-forked``) that asks
  the fork server instead of starting a process; it starts the fork server itself on first use. The
  classroom selects it with ``JUPYTER_DEFAULT_PROVISIONER_NAME`` (unless ``classroom --no-fork``). A kernel
  command that is not this Python's ``-m ipykernel_launcher`` is started as usual.

A kernel's parent is the fork server; it exits when the fork server exits (ipykernel's parent
poller), and the fork server exits when the Jupyter server that started it does.
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

from jupyter_client.provisioning import LocalProvisioner

PRELOAD = ("qgan_widgets._tf", "cirq", "ipykernel.kernelapp", "ipykernel.ipkernel", "ipywidgets",
           "matplotlib.pyplot", "qgan_widgets.widgets", "qgan_widgets.widgets.runner", "qgan_widgets.pipeline",
           "qgan_widgets.training", "qgan_widgets.models", "qgan_widgets.models.vae", "qgan_widgets.quantum.backends",
           "qgan_widgets.quantum.statevector", "qgan_widgets.data", "qgan_widgets.scores")
"""What the fork server imports before it forks kernels: imports only. ``qgan_widgets._tf`` first, with
``QGAN_TF_DEFER_START=1``: it sets TensorFlow's environment (Keras 2, log level, oneDNN), imports it and
pins its thread counts without starting its runtime. Not TFQ: importing it starts the runtime; a kernel
that picks the ``tfq`` backend imports it itself."""
PROVISIONER = "qgan-forked"
FOLDER_PREFIX = "qgan-fork-"  # the fork server's socket lives in a temporary folder of this name
KERNEL_NAME = "qgan-kernel"
"""A forked kernel's process name (``ps -o comm``, psutil's ``name()``): its command line is the fork server's."""
START_TIMEOUT = 180.0  # seconds the fork server may take to import PRELOAD on a busy machine


class ForkServerError(RuntimeError):
    """The fork server could not be started or reached."""


# ------------------------------------------------------------------------------------ the server
def _preload() -> None:
    os.environ["QGAN_TF_DEFER_START"] = "1"
    for name in PRELOAD:
        importlib.import_module(name)
    gc.collect()
    gc.freeze()  # the collector would otherwise touch (and so copy) every preloaded object in each kernel


def _become_kernel(request: dict) -> None:
    """In the forked child: turn into the ipykernel the request describes (never returns)."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.setpgid(0, 0)  # its own process group, as a launched kernel: interrupts reach it alone
        _set_name(KERNEL_NAME)
        env = dict(request.get("env") or os.environ)
        env["JPY_PARENT_PID"] = str(os.getppid())
        os.environ.clear()
        os.environ.update(env)
        if request.get("cwd"):
            os.chdir(request["cwd"])
        import numpy as np

        np.random.seed()  # each kernel its own legacy global stream (Python's random reseeds itself)
        os.environ.pop("QGAN_TF_DEFER_START", None)
        from qgan_widgets import _tf

        _tf.ensure_legacy_keras()  # the environment a kernel importing TensorFlow itself would have
        _tf.start_quietly()  # TensorFlow's start-up lines now, filtered, not on a student's page
        from ipykernel.kernelapp import IPKernelApp

        sys.argv = ["ipykernel_launcher", *request["argv"]]
        # parent_handle: ipykernel read JPY_PARENT_PID when the fork server imported it
        IPKernelApp.launch_instance(argv=list(request["argv"]), parent_handle=os.getppid())
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    except BaseException:  # the server's log says why the kernel never came
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _set_name(name: str) -> None:
    try:
        import ctypes

        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


def serve(path: str) -> None:
    """Run the fork server on Unix socket ``path`` until the process that started it exits."""
    parent = os.getppid()
    _preload()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel: no zombies
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(path)
            server.listen(64)
            server.settimeout(1.0)
            Path(path + ".ready").touch()
            print(f"classroom_fork: ready ({len(PRELOAD)} modules preloaded, pid {os.getpid()})", flush=True)
            while os.getppid() == parent:
                try:
                    conn, _ = server.accept()
                except socket.timeout:
                    continue
                with conn:
                    _answer(server, conn)
    finally:
        for leftover in (path, path + ".ready"):
            with contextlib.suppress(OSError):
                os.remove(leftover)
        if os.path.basename(os.path.dirname(path)).startswith(FOLDER_PREFIX):
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(path))


def _answer(server: socket.socket, conn: socket.socket) -> None:
    """Fork the kernel that ``conn``'s request asks for and send back its process id."""
    conn.settimeout(30.0)
    try:
        request = json.loads(_read_line(conn))
        if not isinstance(request.get("argv"), list):
            raise ValueError("the request has no argv list")
    except (ValueError, OSError, AttributeError) as exc:
        _send(conn, {"error": f"bad request: {exc}"})
        return
    pid = os.fork()
    if pid == 0:
        server.close()
        conn.close()
        _become_kernel(request)
    _send(conn, {"pid": pid})


def _read_line(conn: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8")


def _line(obj: dict) -> bytes:
    """One message of the fork server's protocol: a JSON object on one line."""
    return (json.dumps(obj) + "\n").encode("utf-8")


def _send(conn: socket.socket, obj: dict) -> None:
    with contextlib.suppress(OSError):  # the asker went away: nothing to tell
        conn.sendall(_line(obj))


# ------------------------------------------------------------------------------------ the client
class ForkServer:
    """The fork server of this process (started on first use) and the requests sent to it."""

    def __init__(self):
        self.process: subprocess.Popen | None = None
        self.path: str | None = None
        self._lock = threading.Lock()  # a warm pool asks for several kernels at once

    def ensure(self) -> str:
        """The fork server's socket path, starting it (and waiting until it listens) if needed."""
        with self._lock:
            if self.process is None or self.process.poll() is not None:
                self._start()
            return self.path

    def _start(self) -> None:
        folder = tempfile.mkdtemp(prefix=FOLDER_PREFIX)
        self.path = os.path.join(folder, "socket")
        self.process = subprocess.Popen([sys.executable, "-m", "qgan_widgets.apps.classroom_fork", self.path],
                                        stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while not os.path.exists(self.path + ".ready"):
            if self.process.poll() is not None:
                raise ForkServerError(f"the fork server exited with code {self.process.returncode} while importing")
            if time.monotonic() > deadline:
                self.process.kill()
                raise ForkServerError(f"the fork server did not listen within {START_TIMEOUT:.0f} s")
            time.sleep(0.1)

    def spawn(self, argv: list[str], env: dict | None, cwd: str | None) -> int:
        """Fork a kernel with these ipykernel arguments; its process id."""
        path = self.ensure()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(60.0)
            conn.connect(path)
            conn.sendall(_line({"argv": argv, "env": env, "cwd": cwd}))
            reply = json.loads(_read_line(conn) or "{}")
        if "pid" not in reply:
            raise ForkServerError(reply.get("error", "the fork server gave no answer"))
        return int(reply["pid"])


FORK_SERVER = ForkServer()


class ForkedProcess:
    """What Jupyter's local provisioner needs of a ``Popen`` for a kernel that is not our child."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None
        self.stdin = self.stdout = self.stderr = None

    def poll(self) -> int | None:
        """None while the kernel runs; 0 once it has ended (its exit code is the fork server's to reap)."""
        if self.returncode is None:
            try:
                with open(f"/proc/{self.pid}/stat") as f:  # a zombie is gone too
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        self.returncode = 0
            except FileNotFoundError:
                self.returncode = 0
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout)
            time.sleep(0.05)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def kernel_argv(cmd: list[str]) -> list[str] | None:
    """The ipykernel arguments of a kernel command ``[this python, -m, ipykernel_launcher, ...]``; None
    for any other command (another Python, another kernel)."""
    if len(cmd) >= 3 and cmd[1:3] == ["-m", "ipykernel_launcher"] and \
            os.path.realpath(cmd[0]) == os.path.realpath(sys.executable):
        return list(cmd[3:])
    return None


class ForkedProvisioner(LocalProvisioner):
    """Jupyter's local provisioner, except that an ipykernel of this Python is forked from the fork server."""

    async def launch_kernel(self, cmd: list[str], **kwargs):
        argv = kernel_argv(cmd)
        if argv is None:
            return await super().launch_kernel(cmd, **kwargs)
        env, cwd = kwargs.get("env"), kwargs.get("cwd")
        pid = await asyncio.get_running_loop().run_in_executor(
            None, FORK_SERVER.spawn, argv, dict(env) if env else None, str(cwd) if cwd else None)
        self.process = ForkedProcess(pid)
        self.pid, self.pgid = pid, pid
        self.cwd = cwd or Path.cwd()
        return self.connection_info


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m qgan_widgets.apps.classroom_fork SOCKET_PATH", file=sys.stderr)
        sys.exit(2)
    serve(sys.argv[1])
