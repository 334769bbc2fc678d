"""Keep TensorFlow's native start-up chatter off the dashboard page.

TensorFlow writes a few lines to the process's file descriptor 2 when it loads (CUDA plugin
registration, "failed call to cuInit" on machines without a GPU) that no log level silences. In a
kernel these land on the Voila page as a red box above the dashboard. :func:`quiet_tensorflow_import`
imports TensorFlow with descriptor 2 diverted to a temporary file, drops the known harmless lines and
writes anything else back to ``sys.stderr``, so a real problem is still shown.
"""
from __future__ import annotations

import os
import sys
import tempfile

HARMLESS = (
    "Unable to register cuFFT factory", "Unable to register cuDNN factory", "Unable to register cuBLAS factory",
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "failed call to cuInit", "computation placer already registered", "TF-TRT Warning",
    "oneDNN custom operations are on", "This TensorFlow binary is optimized",
    "To enable the following instructions", "rebuild TensorFlow with the appropriate compiler flags",
)


def quiet_tensorflow_import() -> None:
    """Import TensorFlow (through ``qgan_widgets._tf``) with its harmless native messages dropped."""
    if "tensorflow" in sys.modules:
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable descriptor 2: import as is
        from qgan_widgets._tf import tf  # noqa: F401

        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            from qgan_widgets._tf import tf

            tf.config.list_physical_devices("GPU")  # the cuInit message comes now, not mid-training
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines() if line.strip() and not any(h in line for h in HARMLESS)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
