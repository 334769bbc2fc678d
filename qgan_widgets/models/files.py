"""Saved models on disk: a directory with ``config.json`` and Keras HDF5 weights, written atomically.

Shared by :mod:`qgan_widgets.models.vae` and :mod:`qgan_widgets.scores.features` (no pickle anywhere): a save
writes into a fresh temporary directory beside its target and swaps it in only when complete, so an
error or interrupt leaves the previous model as it was; a load checks the format, its version and
every weights file, and names the file and what is wrong.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from qgan_widgets.data.cache import clean_stale_partials, partial_dir

__all__ = ["atomic_directory", "read_config", "load_weights", "FORMAT_VERSION"]

FORMAT_VERSION = 1
"""The newest ``format_version`` of saved models this version of qgan_widgets reads."""


@contextlib.contextmanager
def atomic_directory(path: Path):
    """Yield a fresh temporary directory beside ``path``; on success it replaces ``path``.

    On an error or interrupt the temporary directory is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_partials(path.parent)  # left by a killed save
    tmp = partial_dir(path)
    try:
        yield tmp
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / "x")
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def read_config(path: Path, kind: str, error: type[Exception]) -> dict:
    """Read and check ``path/config.json`` written by a ``save`` of ``kind``."""
    cfg = Path(path) / "config.json"
    if not Path(path).is_dir():
        raise error(f"{path}: no saved model here (expected a directory with config.json)")
    try:
        meta = json.loads(cfg.read_text())
    except FileNotFoundError:
        raise error(f"{path}: config.json is missing") from None
    except (OSError, ValueError) as e:
        raise error(f"{cfg}: unreadable ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != kind or "config" not in meta:
        raise error(f"{cfg}: not a saved {kind} (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise error(f"{cfg}: written by a newer qgan_widgets (format {meta['format_version']})")
    return meta


def load_weights(path: Path, models, files, error: type[Exception]) -> None:
    """Load each of ``models`` from ``path/<file>`` (``files`` in the same order), raising ``error``
    that names the file when one is missing or does not fit the architecture."""
    for model, name in zip(models, files):
        f = Path(path) / name
        if not f.is_file():
            raise error(f"{path}: weights file {name} is missing")
        try:
            model.load_weights(str(f))
        except (OSError, ValueError) as e:
            raise error(f"{f}: the weights do not fit the configured architecture or are "
                        f"corrupt ({str(e).splitlines()[0][:200]})") from None
