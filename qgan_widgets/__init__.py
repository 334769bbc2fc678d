"""qgan_widgets: learn, teach and explore hybrid latent style-based quantum GANs in Jupyter.

Importing the package selects Keras 2 (tf_keras) for TensorFlow before TensorFlow is loaded (see
:mod:`qgan_widgets._tf`), so import it before tensorflow. The code sits in wings, read bottom-up;
each wing's ``__init__`` is its public face::

    import qgan_widgets as qw
    qw.data.load_dataset()            # data:     SAT-4 and the stand-in, views
    qw.quantum.style_circuit(4, 2)    # quantum:  the style circuit and its simulators
    qw.models.QuantumGenerator(4, 2)  # models:   generators, VAE, critic
    qw.scores.frechet_distance(...)   # scores:   FD, KID, stability, feature extractors
    qw.pipeline.Workspace.prepare()   # pipeline: data + VAE + extractor, cached
    qw.training.TrainConfig(...)      # training: the WGAN-GP trainer
    qw.study.SweepConfig.load("quick")  # study:  the capacity sweep and its analysis
    qw.teaching.versions_table()      # teaching: notebook helpers and exercises
    qw.widgets.Explorer()             # widgets:  the Explorer dashboard
    qw.apps.run_demo(quick=True)      # apps:     what ``python -m qgan_widgets`` runs

Imports only point down: data, quantum -> models -> scores -> pipeline -> training -> study,
teaching -> widgets -> apps (kept by an import-linter contract in ``pyproject.toml``).
``docs/DESIGN.md`` has the wing map. A wing is imported when first used (``qw.models`` loads
TensorFlow; ``import qgan_widgets`` alone does not), so ``python -m qgan_widgets info`` can
diagnose a broken stack.
"""
from __future__ import annotations

import importlib as _importlib
import importlib.util  # noqa: F401  (_importlib.util in lazy_face)
import os as _os
import sys as _sys

__version__ = "0.2.0"

def env_flag(name: str) -> bool:
    """True when the environment variable ``name`` is set to anything but empty, ``0`` or ``false``
    (``QGAN_FAST``, ``QGAN_TF_LOGS``, ``QGAN_REVEAL``)."""
    return _os.environ.get(name, "0").strip() not in ("", "0", "false", "False")


# The Keras guard, without importing TensorFlow yet (qgan_widgets._tf does the full check).
if _os.environ.get("TF_USE_LEGACY_KERAS") is None:
    _os.environ["TF_USE_LEGACY_KERAS"] = "1"
if "tensorflow" in _sys.modules:
    from qgan_widgets._tf import ensure_legacy_keras as _ensure

    _ensure()

FAST = env_flag("QGAN_FAST")
"""True when ``QGAN_FAST=1``: notebooks and demos use their small configurations."""

WINGS = ("data", "quantum", "models", "scores", "pipeline", "training", "study", "teaching", "widgets", "apps")
"""The package's wings, bottom-up (``pipeline`` is a module, the others subpackages)."""


def lazy_face(package: str, lazy: dict[str, str]):
    """``(__getattr__, __dir__)`` for a wing's face (PEP 562) whose names in ``lazy`` (name -> module of
    the wing) are imported on first use, and whose modules load as attributes (``qw.quantum.statevector``).
    The faces of ``quantum``, ``models`` and ``training`` keep their TensorFlow modules lazy this way, so
    the dashboard shows (counts, circuit, data) without importing TensorFlow: 0.3 GiB and seconds a kernel."""

    def getattr_(name: str):
        face = _sys.modules[package]
        module = lazy.get(name)
        if module is not None:
            value = getattr(_importlib.import_module(f"{package}.{module}"), name)
            setattr(face, name, value)
            return value
        if not name.startswith("_") and _importlib.util.find_spec(f"{package}.{name}") is not None:
            return _importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def dir_():
        return sorted(set(vars(_sys.modules[package])) | set(lazy))

    return getattr_, dir_


def __getattr__(name: str):
    """Import a wing on first use: ``qw.models`` works after a bare ``import qgan_widgets``."""
    if name in WINGS:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(WINGS))
