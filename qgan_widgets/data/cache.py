"""Where the toolkit keeps what it computes once, and the atomic cache of converted arrays.

:func:`cache_dir` is the one directory for converted SAT-4 arrays (``sat4/``), trained VAEs
(``vae/``), feature extractors (``features/``) and the dashboard's runs; everything in it is safe
to delete. :func:`cached` returns the ``x.npy`` / ``y.npy`` arrays of one cache entry as read-only
memory maps, creating the entry first through a temporary directory renamed into place, so an
error or interrupt never leaves a half-written entry. :func:`stat_key` keys entries by the source
files' paths, sizes and modification times. Used by :mod:`qgan_widgets.data.dataset` (taught in notebook
``01_sat4_data``).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from qgan_widgets.data.sat4 import IMAGE_SHAPE, DatasetError

_CACHE_VERSION = 1  # bump when the cache layout or conversion changes


def checkout_root() -> Path | None:
    """The source checkout holding this package (its parent has ``pyproject.toml``), else None."""
    root = Path(__file__).resolve().parents[2]  # qgan_widgets/data/cache.py -> the checkout
    return root if (root / "pyproject.toml").is_file() else None


def cache_dir() -> Path:
    """Directory for converted arrays and trained models (created if possible).

    ``$QGAN_CACHE_DIR`` if set, else ``<checkout>/data/cache`` when the package sits in a source
    checkout, else ``~/.cache/qgan_widgets``. Everything in it is safe to delete.
    """
    env = os.environ.get("QGAN_CACHE_DIR")
    if env:
        path = Path(env).expanduser()
    elif (root := checkout_root()) is not None:
        path = root / "data" / "cache"
    else:
        path = Path.home() / ".cache" / "qgan_widgets"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # reported when something is actually written there
    return path



def stat_key(paths: list[Path]) -> str:
    parts = [f"v{_CACHE_VERSION}"]
    for p in paths:
        st = p.stat()
        parts.append(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}")
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:16]


def _open_cached(entry: Path) -> tuple[np.ndarray, np.ndarray] | None:
    x_path, y_path = entry / "x.npy", entry / "y.npy"
    if not (x_path.is_file() and y_path.is_file()):
        return None
    try:
        x = np.load(x_path, mmap_mode="r")
        y = np.load(y_path, mmap_mode="r")
    except (OSError, ValueError):
        return None  # unreadable entry: converted again below
    if x.dtype != np.uint8 or x.shape[1:] != IMAGE_SHAPE or y.shape != (x.shape[0],):
        return None
    return x, y


PARTIAL_SUFFIX = ".partial"
LEGACY_PARTIAL_AGE_S = 24 * 3600  # a partial directory without an owner pid (older versions): stale after a day


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def left_behind(path: Path, pid: int | None, legacy_age_s: float = 24 * 3600) -> bool:
    """Whether a temporary directory was left behind: its owner ``pid`` (read from its name) is
    neither this process nor alive, or, without a pid (a name from an older version), it is older
    than ``legacy_age_s``. Used for cache ``.partial`` directories and the sweep's Ray directories."""
    import time

    if pid is not None:
        return pid != os.getpid() and not _pid_alive(pid)
    try:
        return path.is_dir() and time.time() - path.stat().st_mtime > legacy_age_s
    except OSError:
        return False


def partial_dir(entry: Path) -> Path:
    """A fresh ``.NAME.PID.XXXX.partial`` directory beside ``entry``: the owner's pid in the name lets
    :func:`clean_stale_partials` tell a live conversion from one a killed process left behind."""
    return Path(tempfile.mkdtemp(prefix=f".{entry.name}.{os.getpid()}.", suffix=PARTIAL_SUFFIX, dir=entry.parent))


def clean_stale_partials(directory: Path) -> list[Path]:
    """Remove the ``*.partial`` directories in ``directory`` that no live process owns (left by a killed
    first load; each can hold a full-size memory map). Returns what was removed."""
    removed = []
    try:
        candidates = list(Path(directory).glob(f".*{PARTIAL_SUFFIX}"))
    except OSError:
        return removed
    for path in candidates:
        parts = path.name[:-len(PARTIAL_SUFFIX)].split(".")
        pid = next((int(t) for t in reversed(parts[2:-1]) if t.isdigit()), None) if len(parts) >= 4 else None
        if path.is_dir() and left_behind(path, pid, LEGACY_PARTIAL_AGE_S):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def cached(entry: Path, convert) -> tuple[np.ndarray, np.ndarray]:
    """Return the arrays cached in ``entry``, running ``convert(tmp_dir)`` first if needed.

    ``convert`` writes ``x.npy`` and ``y.npy`` into a fresh temporary directory beside ``entry``,
    renamed into place only when complete: an error or interrupt leaves nothing behind. If the cache
    cannot be written the arrays are converted in a system temporary directory and returned in memory.
    """
    hit = _open_cached(entry)
    if hit is not None:
        return hit
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_partials(entry.parent)
        tmp = partial_dir(entry)
        writable = True
    except OSError:
        tmp = Path(tempfile.mkdtemp(prefix="qgan-sat4-"))
        writable = False
    try:
        convert(tmp)
        if not writable:
            return np.load(tmp / "x.npy"), np.load(tmp / "y.npy")
        try:
            os.chmod(tmp, 0o755)  # mkdtemp makes it private
            os.replace(tmp, entry)
        except OSError:
            if _open_cached(entry) is None:  # not a concurrent writer that won the race
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    hit = _open_cached(entry)
    if hit is None:
        raise DatasetError(f"{entry}: the cache entry just written cannot be read back")
    return hit

