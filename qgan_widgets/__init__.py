"""qgan_widgets: learn, teach and explore hybrid latent style-based quantum GANs in Jupyter.

Importing the package selects Keras 2 (tf_keras) for TensorFlow before TensorFlow is loaded (see
:mod:`qgan_widgets._tf`), so import it before tensorflow. Modules, in reading order:

``data`` (SAT-4 and the built-in stand-in; + ``sat4``, ``cache``, ``standin``) -> ``views`` (band
views, grids) -> ``vae`` (+ ``vae_tuning``, ``modelfiles``) -> ``circuits`` -> ``generators`` (+ ``backends``, ``statevector``,
``statevector_plan``) -> ``critic`` -> ``training`` (+ ``trainconfig``, ``rundir``) -> ``metrics`` /
``features`` (+ ``inception``) -> ``pipeline`` -> ``demo`` / ``experiments`` (+ ``sweepconfig``, ``scaling``,
``optimum``) -> ``widgets``. ``docs/DESIGN.md`` has the full module map.

TensorFlow itself is imported lazily by the modules that need it, so ``python -m qgan_widgets
info`` can diagnose a broken stack.
"""
from __future__ import annotations

import os as _os
import sys as _sys

__version__ = "0.1.0"

# The Keras guard, without importing TensorFlow yet (qgan_widgets._tf does the full check).
if _os.environ.get("TF_USE_LEGACY_KERAS") is None:
    _os.environ["TF_USE_LEGACY_KERAS"] = "1"
if "tensorflow" in _sys.modules:
    from qgan_widgets._tf import ensure_legacy_keras as _ensure

    _ensure()

FAST = _os.environ.get("QGAN_FAST", "0") not in ("", "0", "false", "False")
"""True when ``QGAN_FAST=1``: notebooks and demos use their small configurations."""
