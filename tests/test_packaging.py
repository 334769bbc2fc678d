"""The pinned stack, the Keras 2 guard and the `info` command."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from qgan_widgets.apps import info

ROOT = Path(__file__).resolve().parents[1]


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+(?:\[[^\]]+\])?)\s*(.*)$", req)
    assert m, req
    return m.group(1).lower(), m.group(2).replace(" ", "")


def _pyproject_reqs() -> dict[str, str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = meta["dependencies"] + meta["optional-dependencies"]["dev"]
    return dict(_split(r) for r in reqs)


def _environment_reqs() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert "python=3.11" in env["dependencies"]
    return dict(_split(r) for r in pip)


def test_environment_yml_carries_the_same_pins_as_pyproject():
    assert _environment_reqs() == _pyproject_reqs()


def test_info_pins_match_pyproject():
    reqs = _pyproject_reqs()
    for name, spec in info.PINS.items():
        assert reqs[name] == spec.replace(" ", ""), name
    assert "cirq" not in reqs, "never the bare cirq metapackage: it breaks TFQ's pins"


def test_check_versions_names_the_bad_package_and_the_fix(monkeypatch):
    real = info.md.version

    def fake(name):
        return "1.7.0" if name == "cirq-core" else real(name)

    monkeypatch.setattr(info.md, "version", fake)
    _, problems = info.check_versions()
    bad = [p for p in problems if p.startswith("cirq-core")]
    assert bad and "1.7.0" in bad[0] and "==1.5.0" in bad[0] and "make install" in bad[0]


def _python(code: str, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    clean.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean, timeout=120)


def test_import_selects_keras_2_even_after_tensorflow_was_imported():
    r = _python("import tensorflow as tf, qgan_widgets; from qgan_widgets._tf import keras;"
                "print(tf.keras.__name__, keras.__version__)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["tf_keras.api._v2.keras", "2.18.0"]


def test_import_after_keras_3_fails_with_a_clear_message():
    r = _python("import tensorflow as tf; tf.keras.layers; import qgan_widgets")
    assert r.returncode != 0
    assert "KerasModeError" in r.stderr and "Keras 3" in r.stderr and "Restart the kernel" in r.stderr


def test_legacy_keras_switched_off_explicitly_is_refused():
    r = _python("import qgan_widgets._tf", TF_USE_LEGACY_KERAS="0")
    assert r.returncode != 0 and "TF_USE_LEGACY_KERAS is set to '0'" in r.stderr


def test_info_command_passes_on_this_stack():
    r = subprocess.run([sys.executable, "-m", "qgan_widgets", "info"], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "tfq check" in r.stdout and "All checks passed" in r.stdout and "SAT-4 data" in r.stdout and "Inception weights" in r.stdout


def test_cli_rejects_unknown_commands():
    from qgan_widgets.__main__ import main

    assert main(["no-such-command"]) == 2
    assert main(["--help"]) == 0


NOISE = ("cuFFT", "cuDNN", "cuBLAS", "cuInit", "absl::InitializeLog", "XLA service", "StreamExecutor device",
         "oneDNN custom operations", "This TensorFlow binary is optimized", "Compiled cluster using XLA")
_WORK = ("import numpy as np, qgan_widgets as qw; "
         "g = qw.models.QuantumGenerator(2, 1, seed=0); print(float(np.sum(g(np.zeros((3, g.noise_dim), 'float32'))))); "
         "from qgan_widgets._tf import tf; f = tf.function(lambda x: tf.reduce_sum(x * x), jit_compile=True); "
         "print(float(f(tf.ones(4))))")


def test_no_tensorflow_start_up_noise_unless_asked_for():
    """Issue 12: no CUDA registration, cuInit, XLA or absl lines in what users see; QGAN_TF_LOGS=1 keeps them."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "QGAN_TF_LOGS")}
    quiet = subprocess.run([sys.executable, "-c", _WORK], capture_output=True, text=True, env=env, timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.split() == [quiet.stdout.split()[0], "4.0"]
    assert not [line for line in quiet.stderr.splitlines() if any(n in line for n in NOISE)], quiet.stderr
    loud = subprocess.run([sys.executable, "-c", _WORK], capture_output=True, text=True, timeout=300,
                          env={**env, "QGAN_TF_LOGS": "1"})
    assert loud.returncode == 0 and any(n in loud.stderr for n in NOISE), loud.stderr  # the filter matters here


_MAPPED = ("import ctypes, sys; from qgan_widgets._allocator import keep_freed_memory\n"
           "class Info(ctypes.Structure): _fields_ = [(n, ctypes.c_size_t) for n in "
           "('arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks', 'fordblks', 'keepcost')]\n"
           "libc = ctypes.CDLL(None); libc.mallinfo2.restype = Info; libc.malloc.restype = ctypes.c_void_p\n"
           "libc.free.argtypes = [ctypes.c_void_p]\n"
           "kept = keep_freed_memory(); before = libc.mallinfo2().hblks; p = libc.malloc(8 << 20)\n"
           "print(kept, libc.mallinfo2().hblks - before); libc.free(p)")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings")
def test_batch_jobs_keep_freed_memory_and_the_switch_turns_it_off():
    """An 8 MiB block (a batch of tiles) comes from the heap, not a fresh mapping the OS must fault in
    page by page, once keep_freed_memory ran; QGAN_KEEP_FREED=0 leaves glibc's default (mapped)."""
    env = {k: v for k, v in os.environ.items() if k != "QGAN_KEEP_FREED"}
    on = subprocess.run([sys.executable, "-c", _MAPPED], capture_output=True, text=True, env=env, timeout=120)
    off = subprocess.run([sys.executable, "-c", _MAPPED], capture_output=True, text=True, timeout=120,
                         env={**env, "QGAN_KEEP_FREED": "0"})
    if "mallinfo2" in on.stderr:  # glibc older than 2.33
        pytest.skip("this C library has no mallinfo2 to read the mapped blocks with")
    assert on.returncode == 0 and off.returncode == 0, on.stderr + off.stderr
    assert on.stdout.split() == ["True", "0"] and off.stdout.split() == ["False", "1"], (on.stdout, off.stdout)


def test_batch_commands_keep_freed_memory_and_the_classroom_does_not():
    from qgan_widgets import __main__ as cli

    assert set(cli.BATCH) == {"demo", "bench", "sweep", "vae-study"} and "classroom" not in cli.BATCH
    assert set(cli.BATCH) <= set(cli.COMMANDS)
