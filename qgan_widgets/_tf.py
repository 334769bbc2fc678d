"""The one place that decides which Keras the toolkit uses.

TensorFlow Quantum's layers subclass ``tf.keras.layers.Layer``. In TensorFlow 2.18, ``tf.keras`` is
Keras 3 unless the environment variable ``TF_USE_LEGACY_KERAS=1`` is set before ``tf.keras`` is
first touched; TFQ needs Keras 2 (the ``tf_keras`` package). ``import qgan_widgets`` calls
:func:`ensure_legacy_keras`, and every module that needs TensorFlow imports it from here::

    from qgan_widgets._tf import tf, keras   # keras is tf_keras (Keras 2)

so the guard cannot be skipped by importing a submodule first.
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


def ensure_legacy_keras() -> None:
    """Select Keras 2 (tf_keras) for TensorFlow, or fail clearly if it is too late to do so."""
    value = os.environ.get("TF_USE_LEGACY_KERAS")
    if value not in (None, "1", "true", "True"):
        raise KerasModeError(
            f"TF_USE_LEGACY_KERAS is set to {value!r}, but qgan_widgets needs Keras 2 (tf_keras) "
            f"because TensorFlow Quantum's layers are Keras 2 layers. Unset it or set it to 1. {_FIX}"
        )
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of notebooks
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


ensure_legacy_keras()

import tensorflow as tf  # noqa: E402  (must follow the guard)
import tf_keras as keras  # noqa: E402

__all__ = ["tf", "keras", "ensure_legacy_keras", "KerasModeError"]
