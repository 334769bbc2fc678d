"""Classroom kernels forked from one TensorFlow-loaded process (qgan_widgets.apps.classroom_fork)."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import psutil
import pytest

from qgan_widgets.apps import classroom_fork as cf


def test_only_this_pythons_ipykernel_is_forked():
    assert cf.kernel_argv([sys.executable, "-m", "ipykernel_launcher", "-f", "c.json"]) == ["-f", "c.json"]
    assert cf.kernel_argv(["/usr/bin/other-python3", "-m", "ipykernel_launcher", "-f", "c.json"]) is None
    assert cf.kernel_argv([sys.executable, "-m", "some_other_kernel", "-f", "c.json"]) is None
    assert cf.kernel_argv(["julia", "-i"]) is None


def test_a_forked_process_handle_sees_its_process_end_even_as_a_zombie():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    handle = cf.ForkedProcess(proc.pid)
    try:
        assert handle.poll() is None
        with pytest.raises(subprocess.TimeoutExpired):
            handle.wait(timeout=0.2)
        handle.kill()
        assert handle.wait(timeout=10) == 0  # not reaped yet (our child): a zombie counts as gone
    finally:
        proc.kill()
        proc.wait()


def test_the_classroom_uses_the_fork_provisioner_unless_told_not_to():
    from importlib.metadata import entry_points

    (ep,) = entry_points(group="jupyter_client.kernel_provisioners", name=cf.PROVISIONER)
    assert ep.load() is cf.ForkedProvisioner
    from qgan_widgets.apps import classroom

    p = __import__("argparse").ArgumentParser()
    classroom.add_arguments(p)
    assert p.parse_args([]).no_fork is False and p.parse_args(["--no-fork"]).no_fork is True


@pytest.mark.slow
def test_kernels_are_forked_from_one_server_run_tensorflow_and_end_with_it(tmp_path):
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_client.provisioning import KernelProvisionerFactory

    factory = KernelProvisionerFactory.instance()
    saved = factory.default_provisioner_name
    factory.default_provisioner_name = cf.PROVISIONER
    code = ("import os\nfrom qgan_widgets._tf import tf\n"
            "f = tf.function(lambda a: tf.reduce_sum(a * 2.0), jit_compile=True)\n"
            "g = tf.function(lambda a: tf.reduce_sum(tf.matmul(a, a) + a))\n"
            "print('ran', float(f(tf.ones((3,)))), float(g(tf.ones((2, 2)))), os.getcwd(), "
            "tf.config.threading.get_intra_op_parallelism_threads())\n")

    async def run(km):
        await km.start_kernel(cwd=str(tmp_path))
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=240)
            msg_id = kc.execute(code)
            texts, errors = [], []
            while True:
                msg = await kc.get_iopub_msg(timeout=120)
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                if msg["msg_type"] == "stream":
                    texts.append((msg["content"]["name"], msg["content"]["text"]))
                elif msg["msg_type"] == "error":
                    errors.append(msg["content"]["evalue"])
                elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    return texts, errors
        finally:
            kc.stop_channels()

    async def main():
        kms = [AsyncKernelManager(kernel_name="python3") for _ in range(2)]
        try:
            outputs = [await run(km) for km in kms]
            pids = [km.provisioner.pid for km in kms]
            procs = [psutil.Process(pid) for pid in pids]
            names, parents = [p.name() for p in procs], {p.ppid() for p in procs}
            await kms[0].shutdown_kernel(now=False)
            alive = await kms[0].is_alive()
            return outputs, pids, names, parents, alive
        finally:
            for km in kms:
                if km.has_kernel:
                    await km.shutdown_kernel(now=True)

    try:
        outputs, pids, names, parents, alive = asyncio.run(main())
    finally:
        factory.default_provisioner_name = saved
    for texts, errors in outputs:
        assert not errors, errors
        assert [t for name, t in texts if name == "stdout"] == [f"ran 6.0 12.0 {tmp_path} 2\n"], texts
        assert not [t for name, t in texts if name == "stderr"], texts  # TensorFlow's start-up lines kept off the page
    assert names == [cf.KERNEL_NAME] * 2
    (server,) = parents
    assert server == cf.FORK_SERVER.process.pid  # both forked from the one fork server
    assert not alive and not psutil.pid_exists(pids[0])  # shut down, and reaped (not a zombie of the fork server)
    # The fork server (and with it every kernel) ends when the process that started it ends.
    cf.FORK_SERVER.process.terminate()
    cf.FORK_SERVER.process.wait(30)
    deadline = time.monotonic() + 30
    while psutil.pid_exists(pids[1]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not psutil.pid_exists(pids[1])


@pytest.mark.slow
def test_the_fork_server_exits_when_its_starter_does_and_removes_its_socket(tmp_path):
    path = str(tmp_path / "socket")
    starter = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time, os\n"
        f"p = subprocess.Popen([sys.executable, '-m', 'qgan_widgets.apps.classroom_fork', {path!r}])\n"
        "print(p.pid, flush=True)\n"
        f"while not os.path.exists({path!r} + '.ready'): time.sleep(0.1)\n")],
        stdout=subprocess.PIPE, text=True)
    server_pid = int(starter.stdout.readline())
    assert starter.wait(300) == 0
    deadline = time.monotonic() + 30
    while psutil.pid_exists(server_pid) and psutil.Process(server_pid).status() != psutil.STATUS_ZOMBIE \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not psutil.pid_exists(server_pid) or psutil.Process(server_pid).status() == psutil.STATUS_ZOMBIE
    assert not os.path.exists(path) and not os.path.exists(path + ".ready")


def test_deferring_tensorflows_start_leaves_its_runtime_unstarted_and_its_threads_pinned():
    code = ("import os, qgan_widgets._tf as t\n"
            "from tensorflow.python.eager import context\n"
            "print(context.context()._context_handle is None, os.environ['TF_CPP_MIN_LOG_LEVEL'],"
            " os.environ['TF_ENABLE_ONEDNN_OPTS'])\n"
            "t.start_quietly()\n"
            "print(context.context()._context_handle is None, "
            "t.tf.config.threading.get_intra_op_parallelism_threads())\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "QGAN_THREADS"))}
    out = subprocess.run([sys.executable, "-c", code], env={**env, "QGAN_TF_DEFER_START": "1"},
                         capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["True", "2", "0", "False", "2"], out.stdout + out.stderr
    assert "cuInit" not in out.stderr and "absl::InitializeLog" not in out.stderr, out.stderr
