"""The one place that decides which Keras the toolkit uses.

TensorFlow Quantum's layers subclass ``tf.keras.layers.Layer``. In TensorFlow 2.18, ``tf.keras`` is
Keras 3 unless the environment variable ``TF_USE_LEGACY_KERAS=1`` is set before ``tf.keras`` is
first touched; TFQ needs Keras 2 (the ``tf_keras`` package). ``import qgan_widgets`` calls
:func:`ensure_legacy_keras`, and every module that needs TensorFlow imports it from here::

    from qgan_widgets._tf import tf, keras   # keras is tf_keras (Keras 2)

so the guard cannot be skipped by importing a submodule first.

It is also the one place that keeps TensorFlow quiet: the log levels are set before TensorFlow is
first imported, and the native start-up lines that no level silences (CUDA plugin registration,
"failed call to cuInit" on machines without a GPU, oneDNN and CPU-instruction notices) are dropped
while TensorFlow loads and finds its devices; anything else it prints is passed on, so a real
problem is still shown. ``QGAN_TF_LOGS=1`` keeps everything (for bug reports). ``QGAN_TF_DEFER_START=1``
imports TensorFlow without starting its runtime, for a process that will ``fork()`` (see
:func:`start_quietly`).
"""
from __future__ import annotations

import os
import sys

_FIX = (
    "Restart the kernel (or Python) and run `import qgan_widgets` before importing tensorflow or "
    "keras, or set the environment variable TF_USE_LEGACY_KERAS=1 before starting Python."
)


class KerasModeError(RuntimeError):
    """TensorFlow is already running with Keras 3, which TensorFlow Quantum cannot use."""


ONEDNN_DEFAULT = "0"
"""``TF_ENABLE_ONEDNN_OPTS`` unless the environment sets it: oneDNN's graph kernels off (see below)."""
ONEDNN_ISA_DEFAULT = "AVX2"
"""``ONEDNN_MAX_CPU_ISA`` unless the environment sets it: oneDNN's matrix products (which TensorFlow's own
kernels call too) use AVX2 code on every machine.

TensorFlow turns oneDNN's graph kernels on by itself on CPUs with AVX-512 VNNI, BF16 or AMX, and oneDNN
picks code by the CPU's instruction sets, which rounds differently: on a Xeon with AMX an ensemble member
drifted 0.009 from its solo run (0.0003 allowed) until both were set. They keep such CPUs on the code an
AVX2 machine runs; they do not make scores the same on every CPU: the quick demo's seed-0 scores on that
Xeon differ from those of the AMD EPYC that measured the README's tables, at this same cap (README, "The
stack"). Values set beforehand win (faster on such CPUs, other numbers)."""


def ensure_legacy_keras() -> None:
    """Select Keras 2 (tf_keras) for TensorFlow, or fail clearly if it is too late to do so."""
    value = os.environ.get("TF_USE_LEGACY_KERAS")
    if value not in (None, "1", "true", "True"):
        raise KerasModeError(
            f"TF_USE_LEGACY_KERAS is set to {value!r}, but qgan_widgets needs Keras 2 (tf_keras) "
            f"because TensorFlow Quantum's layers are Keras 2 layers. Unset it or set it to 1. {_FIX}"
        )
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose_logs() else "2")  # no INFO/WARNING chatter
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", ONEDNN_DEFAULT)  # an AVX2 machine's kernels on AMX ones too
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", ONEDNN_ISA_DEFAULT)
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return
    # TensorFlow is imported already. tf.keras is resolved lazily on first access, reading the
    # variable set above; if it was touched before, it stays Keras 3.
    name = getattr(tf.keras, "__name__", "")
    if not name.startswith("tf_keras"):
        version = getattr(tf.keras, "__version__", "?")
        raise KerasModeError(
            f"TensorFlow was imported with Keras 3 (tf.keras is {name} {version}) before "
            f"qgan_widgets could select Keras 2 (tf_keras), which TensorFlow Quantum needs. {_FIX}"
        )


HARMLESS = (
    "Unable to register cuFFT factory", "Unable to register cuDNN factory", "Unable to register cuBLAS factory",
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "failed call to cuInit", "computation placer already registered", "TF-TRT Warning",
    "oneDNN custom operations are on", "This TensorFlow binary is optimized",
    "To enable the following instructions", "rebuild TensorFlow with the appropriate compiler flags",
    "XLA service", "StreamExecutor device", "Compiled cluster using XLA",
)
"""Native start-up lines of TensorFlow that mean nothing on a CPU machine (dropped unless QGAN_TF_LOGS=1)."""


DEFAULT_THREADS = 2
"""TensorFlow's intra- and inter-op thread counts unless ``QGAN_THREADS`` says otherwise.

The same seed gives bit-identical results on one machine, but the work split of TensorFlow's
parallel reductions follows the thread count, which TensorFlow takes from the machine's cores: the
same code gave a quick-demo floor of 23.41 with 1 thread and 24.47 with 2, and training amplifies
such differences (trained FD 49.1 vs 52.7 after 80 steps; measured with ``bench host``). A fixed
count makes scores the same on every machine with this stack. ``QGAN_THREADS=N`` picks another
count (e.g. all cores of a big machine, for speed); ``QGAN_THREADS=0`` leaves it to TensorFlow (the
results then depend on the machine); ``TF_NUM_INTRAOP_THREADS`` / ``TF_NUM_INTEROP_THREADS``, when
set, win."""


def thread_count() -> int:
    """The thread count this process pins TensorFlow to (0: TensorFlow's own choice)."""
    raw = os.environ.get("QGAN_THREADS", "").strip()
    if not raw:
        return DEFAULT_THREADS
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"QGAN_THREADS must be a whole number >= 0 (0: TensorFlow's default), got {raw!r}") from None
    if n < 0:
        raise ValueError(f"QGAN_THREADS must be a whole number >= 0 (0: TensorFlow's default), got {raw!r}")
    return n


def _pin_threads(tensorflow) -> None:
    """Set TensorFlow's thread pools before its runtime starts (see :data:`DEFAULT_THREADS`)."""
    n = thread_count()
    for var, setter in (("TF_NUM_INTRAOP_THREADS", tensorflow.config.threading.set_intra_op_parallelism_threads),
                        ("TF_NUM_INTEROP_THREADS", tensorflow.config.threading.set_inter_op_parallelism_threads)):
        raw = os.environ.get(var, "").strip()
        count = int(raw) if raw.isdigit() else n
        if count > 0:
            try:
                setter(count)
            except RuntimeError:  # the runtime started already (TensorFlow was used before qgan_widgets)
                return


def verbose_logs() -> bool:
    """True when the user asked for TensorFlow's own logs (``QGAN_TF_LOGS=1``)."""
    from qgan_widgets import env_flag

    return env_flag("QGAN_TF_LOGS")


def _quietly(action):
    """Run ``action()`` with descriptor 2 diverted; drop the HARMLESS lines, pass on the rest."""
    import tempfile

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable descriptor 2: run as is
        return action()
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            return action()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines() if line.strip() and not any(h in line for h in HARMLESS)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")


def _start_runtime(tensorflow) -> None:
    tensorflow.config.list_physical_devices("GPU")  # the cuInit message comes now, not mid-training
    # XLA's once-per-process lines ("XLA service ... initialized", "Compiled cluster using XLA")
    # go through absl before its logging is set up, at any log level: let them come now.
    tensorflow.function(lambda x: x + 1.0, jit_compile=True)(tensorflow.zeros((1,)))


def start_quietly() -> None:
    """Start TensorFlow's runtime (thread pools, XLA) now, its start-up lines filtered like the import's.

    Importing this module does it, unless ``QGAN_TF_DEFER_START=1`` asked it not to: a process that will
    ``fork()`` (the classroom's fork server) must not start it, since a forked child inherits no threads
    and would hang at its first XLA program; each child calls this instead."""
    _quietly(lambda: _start_runtime(tf))


def _import_quietly(start: bool = True):
    """Import TensorFlow and tf_keras quietly (see :func:`_quietly`), pin the threads, and start the runtime
    if ``start``."""
    def run():
        import tensorflow
        import tf_keras

        _pin_threads(tensorflow)
        if start:
            _start_runtime(tensorflow)
        return tensorflow, tf_keras

    return _quietly(run)


ensure_legacy_keras()

if "tensorflow" in sys.modules or verbose_logs():
    import tensorflow as tf  # noqa: E402  (must follow the guard)
    import tf_keras as keras  # noqa: E402

    _pin_threads(tf)  # unless its runtime has started (TensorFlow imported and used before qgan_widgets)
else:
    from qgan_widgets import env_flag as _env_flag

    tf, keras = _import_quietly(start=not _env_flag("QGAN_TF_DEFER_START"))
if not verbose_logs():
    try:  # Python-side warnings of TensorFlow and Keras go through absl: errors only
        from absl import logging as _absl_logging

        _absl_logging.set_verbosity(_absl_logging.ERROR)
    except ImportError:  # pragma: no cover (absl comes with TensorFlow)
        pass
    tf.get_logger().setLevel("ERROR")

__all__ = ["tf", "keras", "ensure_legacy_keras", "start_quietly", "verbose_logs", "thread_count", "DEFAULT_THREADS", "KerasModeError", "HARMLESS"]
