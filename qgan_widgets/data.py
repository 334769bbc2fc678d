"""SAT-4 loading, caching, source resolution and the ``tf.data`` pipeline.

SAT-4 (DeepSat, Basu et al. 2015) holds 500,000 aerial image patches of 28x28 pixels in four bands
(R, G, B, near infrared), labelled barren land, trees, grassland or none. This module reads the two
public releases into one convention (see ``docs/DESIGN.md``, "Data conventions"):

* images ``uint8 (N, 28, 28, 4)``, bands ``R, G, B, NIR`` (:data:`BANDS`);
* labels ``int64 (N,)``, classes ``0 barren land, 1 trees, 2 grassland, 3 none`` (:data:`CLASS_NAMES`).

Reading order of this file: constants and errors; :func:`cache_dir`; :func:`resolve_source`
(which data to use); :func:`load_sat4` (the official ``.mat`` and the Kaggle CSVs, converted once
to a memory-mapped ``.npy`` cache); :class:`Dataset` and :func:`load_dataset` (what notebooks and
the pipeline call); :func:`to_float` and :func:`make_tf_dataset` (model input). Taught in notebook
``01_sat4_data``; ``docs/DATA.md`` says where to get the real files.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CLASS_NAMES = ("barren land", "trees", "grassland", "none")
"""Class names in label order (SAT-4's one-hot column order)."""
BANDS = ("R", "G", "B", "NIR")
"""Band order of the last image axis."""
IMAGE_SHAPE = (28, 28, 4)
PIXELS = 28 * 28 * 4  # values per image: one Kaggle CSV row

MAT_NAME = "sat-4-full.mat"
CSV_NAMES = {
    "train": ("X_train_sat4.csv", "y_train_sat4.csv"),
    "test": ("X_test_sat4.csv", "y_test_sat4.csv"),
}
SPLITS = ("train", "test")

GET_REAL_DATA = (
    "for real SAT-4 get the Kaggle 'DeepSat (SAT-4) Airborne Dataset' CSVs or sat-4-full.mat from "
    "csc.lsu.edu/~saikat/deepsat/, and put them in data/sat4/ or point QGAN_SAT4_PATH at them (docs/DATA.md)"
)
STANDIN_NAME = "sat4-synthetic"
STANDIN_SIZES = {"train": 20_000, "test": 5_000}
"""Size of the cached stand-in data set (subsets are drawn from it; larger requests extend it)."""

_CACHE_VERSION = 1  # bump when the cache layout or conversion changes
_CSV_CHUNK_ROWS = 2_000


class DatasetError(ValueError):
    """A SAT-4 source is missing or malformed; the message names the file and what is wrong."""


# --------------------------------------------------------------------------- where things live
def checkout_root() -> Path | None:
    """The source checkout holding this package (its parent has ``pyproject.toml``), else None."""
    root = Path(__file__).resolve().parent.parent
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


def default_data_dir() -> Path | None:
    """``<checkout>/data/sat4``, where users put the real files (None outside a checkout)."""
    root = checkout_root()
    return None if root is None else root / "data" / "sat4"


# --------------------------------------------------------------------------- which data
@dataclass(frozen=True)
class DataSource:
    """Where the SAT-4 images come from.

    ``kind`` is ``"mat"``, ``"csv"`` or ``"synthetic"``; ``path`` the ``.mat`` file or the CSV
    directory (None for the stand-in); ``origin`` how it was chosen: ``"argument"``,
    ``"QGAN_SAT4_PATH"``, ``"data/sat4"`` or ``"built-in"``.
    """

    kind: str
    path: Path | None
    origin: str

    @property
    def is_standin(self) -> bool:
        return self.kind == "synthetic"

    def describe(self) -> str:
        """One line: which data, and for the stand-in how to get the real data set."""
        if self.is_standin:
            how = "requested explicitly" if self.origin == "argument" else "no real SAT-4 files found"
            return f"built-in STAND-IN '{STANDIN_NAME}' (synthetic, not real SAT-4; {how}); {GET_REAL_DATA}"
        what = "official .mat" if self.kind == "mat" else "Kaggle CSVs"
        via = {"argument": "given explicitly", "QGAN_SAT4_PATH": "from $QGAN_SAT4_PATH",
               "data/sat4": "found in data/sat4/"}.get(self.origin, self.origin)
        return f"real SAT-4 ({what}) at {self.path} ({via})"


def _is_mat_file(path: Path) -> bool:
    if path.suffix.lower() == ".mat":
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(128)
    except OSError:
        return False
    return head.startswith(b"MATLAB") or head.startswith(b"\x89HDF")


def _classify(path: Path, origin: str) -> DataSource:
    """Turn an existing path into a DataSource, or raise DatasetError saying why it is unusable."""
    if path.is_dir():
        if any((path / name).is_file() for names in CSV_NAMES.values() for name in names):
            return DataSource("csv", path, origin)
        mats = sorted(path.glob("*.mat"))
        if (path / MAT_NAME).is_file():
            return DataSource("mat", path / MAT_NAME, origin)
        if len(mats) == 1:
            return DataSource("mat", mats[0], origin)
        found = ", ".join(p.name for p in mats) or "none"
        raise DatasetError(
            f"{path}: directory holds no SAT-4 files (expected {MAT_NAME} or the Kaggle CSVs "
            f"{', '.join(CSV_NAMES['train'] + CSV_NAMES['test'])}; .mat files found: {found})"
        )
    if path.suffix.lower() == ".csv":
        return DataSource("csv", path.parent, origin)
    if _is_mat_file(path):
        return DataSource("mat", path, origin)
    raise DatasetError(
        f"{path}: not a SAT-4 source (expected a .mat file, a Kaggle *_sat4.csv file or a directory holding them)"
    )


def resolve_source(path: str | os.PathLike | DataSource | None = None) -> DataSource:
    """Decide which SAT-4 data to use.

    Order: an explicit ``path`` > ``$QGAN_SAT4_PATH`` > files under ``<checkout>/data/sat4/`` >
    the built-in stand-in. ``path`` may also be ``"synthetic"`` / ``"sat4-synthetic"`` to ask for
    the stand-in. An explicit path or environment variable that does not exist is an error, never
    a silent fall-back.
    """
    if isinstance(path, DataSource):
        return path
    if path is not None:
        if str(path) in ("synthetic", STANDIN_NAME):
            return DataSource("synthetic", None, "argument")
        p = Path(path).expanduser()
        if not p.exists():
            raise DatasetError(f"{p}: file not found (SAT-4 source given explicitly)")
        return _classify(p, "argument")
    env = os.environ.get("QGAN_SAT4_PATH")
    if env:
        p = Path(env).expanduser()
        if not p.exists():
            raise DatasetError(f"{p}: file not found (set by the QGAN_SAT4_PATH environment variable)")
        return _classify(p, "QGAN_SAT4_PATH")
    d = default_data_dir()
    if d is not None and d.is_dir():
        has_csv = (d / CSV_NAMES["train"][0]).is_file() or (d / CSV_NAMES["test"][0]).is_file()
        if has_csv or (d / MAT_NAME).is_file() or any(d.glob("*.mat")):
            return _classify(d, "data/sat4")
    return DataSource("synthetic", None, "built-in")


# --------------------------------------------------------------------------- the cache
def _stat_key(paths: list[Path]) -> str:
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


def _cached(entry: Path, convert) -> tuple[np.ndarray, np.ndarray]:
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
        tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", suffix=".partial", dir=entry.parent))
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


# --------------------------------------------------------------------------- the .mat release
def _check_labels(onehot: np.ndarray, where: str, n_images: int) -> np.ndarray:
    """One-hot rows ``(N, 4)`` -> int64 labels, or DatasetError saying what is wrong."""
    if onehot.ndim != 2 or onehot.shape[1] != len(CLASS_NAMES):
        raise DatasetError(f"{where}: labels have shape {onehot.shape}, expected one-hot rows of 4 classes")
    if onehot.shape[0] != n_images:
        raise DatasetError(f"{where}: {onehot.shape[0]} labels for {n_images} images (count mismatch)")
    values = np.asarray(onehot)
    if not np.issubdtype(values.dtype, np.number):
        raise DatasetError(f"{where}: labels have dtype {values.dtype}, expected numbers 0/1")
    bad_value = ~np.isin(values, (0, 1))
    bad = bad_value.any(axis=1) | (values.sum(axis=1) != 1)
    if bad.any():
        i = int(np.argmax(bad))
        raise DatasetError(
            f"{where}: labels are not one-hot: image {i} has label {values[i].tolist()} "
            f"({int(bad.sum())} bad label(s) in all)"
        )
    return np.argmax(values, axis=1).astype(np.int64)


def _label_rows(y: np.ndarray, n: int, path: Path, key: str) -> np.ndarray:
    """MATLAB labels as one-hot rows (N, 4): the official (4, N) columns, or (N, 4) as some re-saves have."""
    k = len(CLASS_NAMES)
    if y.ndim == 2 and y.shape[0] == k and (y.shape[1] == n or y.shape[1] != k):
        return y.T
    if y.ndim == 2 and y.shape[1] == k:
        return y
    raise DatasetError(f"{path}: {key} has shape {y.shape}, expected (4, N) one-hot columns")


def _copy_images(dst: np.ndarray, src, order: tuple[int, ...], axis_n: int, chunk: int = 8192) -> None:
    """Copy images from ``src`` (any axis order, N along ``axis_n``) to ``dst (N, 28, 28, 4)``."""
    n = dst.shape[0]
    for start in range(0, n, chunk):
        sl = [slice(None)] * 4
        sl[axis_n] = slice(start, min(start + chunk, n))
        dst[start:start + chunk] = np.asarray(src[tuple(sl)]).transpose(order)


def _v5_truncation(path: Path) -> str | None:
    """Walk the top-level elements of a MATLAB v5 file; say what is missing if it is cut short.

    scipy lists the variables it can find and silently stops at a truncated one, so a download cut
    in the middle would look like a file with missing keys.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(128)
        if not header.startswith(b"MATLAB 5.0") or len(header) < 128:
            return None  # not v5 (scipy reads v4 too, and reports problems itself)
        order = "<" if header[126:128] == b"IM" else ">"
        pos = 128
        while pos < size:
            f.seek(pos)
            tag = f.read(8)
            if len(tag) < 8:
                return f"ends inside an element header at byte {pos} of {size}"
            dtype, nbytes = np.frombuffer(tag, dtype=f"{order}u4")
            if dtype >> 16:  # small data element: data packed into the tag
                pos += 8
                continue
            end = pos + 8 + int(nbytes)
            if dtype == 14:  # miMATRIX elements are padded to 8 bytes
                end += -int(nbytes) % 8
            if end > size + 7:
                return f"an element at byte {pos} needs {int(nbytes):,} bytes but the file ends at {size:,}"
            pos = end
    return None


def _mat_v5(path: Path, split: str, tmp: Path) -> None:
    import scipy.io

    xk, yk = f"{split}_x", f"{split}_y"
    cut = _v5_truncation(path)
    if cut:
        raise DatasetError(f"{path}: truncated or corrupt .mat file ({cut}; download it again?)")
    try:
        info = {name: (shape, cls) for name, shape, cls in scipy.io.whosmat(str(path))}
    except Exception as exc:  # noqa: BLE001 - scipy raises many kinds for a damaged file
        raise DatasetError(f"{path}: truncated or corrupt .mat file ({type(exc).__name__}: {exc})") from exc
    missing = [k for k in (xk, yk) if k not in info]
    if missing:
        raise DatasetError(
            f"{path}: missing key(s) {', '.join(missing)} (keys present: {', '.join(sorted(info)) or 'none'}; "
            "the official sat-4-full.mat has train_x, train_y, test_x, test_y, annotations)"
        )
    xs, xc = info[xk]
    if len(xs) != 4 or tuple(xs[:3]) != IMAGE_SHAPE:
        raise DatasetError(f"{path}: {xk} has shape {tuple(xs)}, expected (28, 28, 4, N)")
    if xc != "uint8":
        raise DatasetError(f"{path}: {xk} has MATLAB class {xc}, expected uint8 images")
    try:
        m = scipy.io.loadmat(str(path), variable_names=[xk, yk])
    except Exception as exc:  # noqa: BLE001
        raise DatasetError(f"{path}: truncated or corrupt .mat file ({type(exc).__name__}: {exc})") from exc
    if xk not in m or yk not in m:
        raise DatasetError(f"{path}: truncated or corrupt .mat file ({xk}/{yk} could not be read)")
    x, y = m[xk], np.asarray(m[yk])
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != IMAGE_SHAPE:
        raise DatasetError(f"{path}: {xk} has shape {x.shape} and dtype {x.dtype}, expected uint8 (28, 28, 4, N)")
    n = x.shape[3]
    labels = _check_labels(_label_rows(y, n, path, yk), f"{path} ({yk})", n)
    out = np.lib.format.open_memmap(tmp / "x.npy", mode="w+", dtype=np.uint8, shape=(n, *IMAGE_SHAPE))
    _copy_images(out, x, (3, 0, 1, 2), axis_n=3)
    out.flush()
    del out
    np.save(tmp / "y.npy", labels)


def _mat_v73(path: Path, split: str, tmp: Path) -> None:
    import h5py

    xk, yk = f"{split}_x", f"{split}_y"
    try:
        f = h5py.File(path, "r")
    except Exception as exc:  # noqa: BLE001
        raise DatasetError(f"{path}: truncated or corrupt .mat (v7.3/HDF5) file ({exc})") from exc
    with f:
        missing = [k for k in (xk, yk) if k not in f]
        if missing:
            raise DatasetError(
                f"{path}: missing key(s) {', '.join(missing)} (keys present: {', '.join(sorted(f.keys())) or 'none'})"
            )
        dx, dy = f[xk], f[yk]
        if not isinstance(dx, h5py.Dataset) or not isinstance(dy, h5py.Dataset):
            raise DatasetError(f"{path}: {xk}/{yk} are not numeric arrays")
        # MATLAB writes column-major: a (28, 28, 4, N) array is stored as (N, 4, 28, 28).
        if dx.ndim != 4 or tuple(dx.shape[1:]) != IMAGE_SHAPE[::-1]:
            raise DatasetError(f"{path}: {xk} has shape {tuple(dx.shape[::-1])}, expected (28, 28, 4, N)")
        if dx.dtype != np.uint8:
            raise DatasetError(f"{path}: {xk} has dtype {dx.dtype}, expected uint8 images")
        n = dx.shape[0]
        try:
            labels = _check_labels(_label_rows(np.asarray(dy[()]).T, n, path, yk), f"{path} ({yk})", n)
            out = np.lib.format.open_memmap(tmp / "x.npy", mode="w+", dtype=np.uint8, shape=(n, *IMAGE_SHAPE))
            _copy_images(out, dx, (0, 3, 2, 1), axis_n=0)
        except DatasetError:
            raise
        except Exception as exc:  # noqa: BLE001 - HDF5 read errors of a damaged file
            raise DatasetError(f"{path}: truncated or corrupt .mat (v7.3/HDF5) file ({exc})") from exc
        out.flush()
        del out
    np.save(tmp / "y.npy", labels)


def _convert_mat(path: Path, split: str, tmp: Path) -> None:
    if path.stat().st_size == 0:
        raise DatasetError(f"{path}: empty file (truncated download?)")
    import h5py

    if h5py.is_hdf5(str(path)):
        _mat_v73(path, split, tmp)
    else:
        _mat_v5(path, split, tmp)


# --------------------------------------------------------------------------- the Kaggle CSVs
def _count_rows(path: Path) -> tuple[int, bool]:
    """(number of data rows, has a text header) of a CSV file, read in binary blocks."""
    newlines, last, size = 0, b"", 0
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            newlines += block.count(b"\n")
            last, size = block[-1:], size + len(block)
    rows = newlines + (1 if size and last != b"\n" else 0)
    header = _has_header(path)
    return rows - int(header), header


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _read_csv_rows(path: Path, ncols: int, what: str, sink) -> int:
    """Parse an all-integer CSV in chunks, check every row, and hand uint8 blocks to ``sink(start, block)``.

    Rows must hold exactly ``ncols`` integers in 0..255. Only one chunk is held at a time.
    Returns the number of rows. Raises DatasetError naming the file, line and what is wrong.
    """
    import pandas as pd

    if not path.is_file():
        raise DatasetError(f"{path}: file not found ({what})")
    if path.stat().st_size == 0:
        raise DatasetError(f"{path}: empty file ({what})")
    header = _has_header(path)
    start = 0
    try:
        reader = pd.read_csv(path, header=None, skiprows=int(header), chunksize=_CSV_CHUNK_ROWS,
                             engine="c", skip_blank_lines=True, low_memory=False)
        for chunk in reader:
            line0 = start + 1 + int(header)  # file line of the chunk's first row
            if chunk.shape[1] != ncols:
                raise DatasetError(
                    f"{path}: ragged or wrong-width rows: {chunk.shape[1]} values at line {line0}, "
                    f"expected {ncols} ({what})"
                )
            values = _numeric(chunk, path, line0)
            if np.isnan(values).any():
                i = int(np.argmax(np.isnan(values).any(axis=1)))
                got = int(np.count_nonzero(~np.isnan(values[i])))
                raise DatasetError(
                    f"{path}: ragged row at line {line0 + i}: {got} values, expected {ncols} ({what})"
                )
            if (values != np.round(values)).any():
                i, j = np.argwhere(values != np.round(values))[0]
                raise DatasetError(f"{path}: non-integer value {values[i, j]} at line {line0 + i}, column {j + 1}")
            if (values < 0).any() or (values > 255).any():
                i, j = np.argwhere((values < 0) | (values > 255))[0]
                raise DatasetError(
                    f"{path}: value {values[i, j]:g} at line {line0 + i}, column {j + 1} is outside 0-255"
                )
            sink(start, values.astype(np.uint8))
            start += len(values)
    except DatasetError:
        raise
    except pd.errors.ParserError as exc:
        raise DatasetError(f"{path}: ragged or malformed CSV, every row needs {ncols} values ({what}): {exc}") from exc
    except (UnicodeDecodeError, ValueError, zlib.error) as exc:
        raise DatasetError(f"{path}: unreadable CSV ({what}): {exc}") from exc
    if start == 0:
        raise DatasetError(f"{path}: no data rows ({what})")
    return start


def _has_header(path: Path) -> bool:
    with open(path, "rb") as f:
        first = f.readline(1 << 16).decode("utf-8", "replace").strip()
    tokens = [t.strip() for t in first.split(",")]
    return bool(tokens) and not any(_is_number(t) for t in tokens)


def _numeric(chunk, path: Path, line0: int) -> np.ndarray:
    """A chunk as float64 (small: one chunk), or DatasetError naming the first non-numeric cell."""
    import pandas as pd

    if all(np.issubdtype(dt, np.number) for dt in chunk.dtypes):
        return chunk.to_numpy(dtype=np.float64)
    for j, col in enumerate(chunk.columns):
        if np.issubdtype(chunk.dtypes.iloc[j], np.number):
            continue
        coerced = pd.to_numeric(chunk[col], errors="coerce")
        bad = coerced.isna() & chunk[col].notna()
        if bad.any():
            i = int(np.argmax(bad.to_numpy()))
            raise DatasetError(
                f"{path}: non-numeric value {chunk[col].iloc[i]!r} at line {line0 + i}, column {j + 1}"
            )
        chunk[col] = coerced
    return chunk.to_numpy(dtype=np.float64)


def _csv_files(directory: Path, split: str) -> tuple[Path, Path]:
    xname, yname = CSV_NAMES[split]
    x_path, y_path = directory / xname, directory / yname
    for p in (x_path, y_path):
        if not p.is_file():
            raise DatasetError(f"{p}: file not found (the Kaggle SAT-4 release has {xname} and {yname})")
    return x_path, y_path


def _convert_csv(x_path: Path, y_path: Path, tmp: Path) -> None:
    labels_onehot: list[np.ndarray] = []
    _read_csv_rows(y_path, len(CLASS_NAMES), "one-hot labels",
                   lambda start, block: labels_onehot.append(block))
    onehot = np.concatenate(labels_onehot)
    n_rows, _ = _count_rows(x_path)
    out = np.lib.format.open_memmap(tmp / "x.npy", mode="w+", dtype=np.uint8, shape=(max(n_rows, 1), *IMAGE_SHAPE))

    def sink(start: int, block: np.ndarray) -> None:
        if start + len(block) > out.shape[0]:
            raise DatasetError(f"{x_path}: more rows than lines counted (file changed while reading?)")
        out[start:start + len(block)] = block.reshape(-1, *IMAGE_SHAPE)  # (H, W, C) order per row

    n = _read_csv_rows(x_path, PIXELS, "images, 3136 values 0-255 per row", sink)
    out.flush()
    if n != out.shape[0]:  # blank lines were skipped: shrink to the rows read
        fixed = np.lib.format.open_memmap(tmp / "x2.npy", mode="w+", dtype=np.uint8, shape=(n, *IMAGE_SHAPE))
        _copy_images(fixed, out, (0, 1, 2, 3), axis_n=0)
        fixed.flush()
        del fixed, out
        os.replace(tmp / "x2.npy", tmp / "x.npy")
    else:
        del out
    labels = _check_labels(onehot, f"{y_path} (for {x_path.name})", n)
    np.save(tmp / "y.npy", labels)


# --------------------------------------------------------------------------- load_sat4
def load_sat4(source: str | os.PathLike | DataSource, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Read one split of real SAT-4: ``(x uint8 (N, 28, 28, 4) R,G,B,NIR; y int64 (N,))``.

    ``source`` is the official ``sat-4-full.mat`` (MATLAB v5 via scipy, or a v7.3 re-save via
    h5py; keys ``{split}_x (28, 28, 4, N)`` uint8 and ``{split}_y (4, N)`` one-hot) or the Kaggle
    CSV release (a directory, or one of its files, holding ``X_{split}_sat4.csv`` with 3136 integers
    per row in (H, W, C) order and ``y_{split}_sat4.csv`` with one-hot rows). The first call converts
    the split to ``.npy`` files under :func:`cache_dir` keyed by the source's size and mtime; later
    calls return read-only memory maps at once. Raises :class:`DatasetError` naming the file and what
    is wrong for any bad input.
    """
    if split not in SPLITS:
        raise DatasetError(f"split must be 'train' or 'test', got {split!r}")
    src = source if isinstance(source, DataSource) else resolve_source(source)
    if src.is_standin or src.path is None:
        raise DatasetError(
            "load_sat4 reads real SAT-4 files; the stand-in comes from load_dataset() or standin.synthetic_sat4()"
        )
    root = cache_dir() / "sat4"
    if src.kind == "mat":
        path = src.path
        if not path.is_file():
            raise DatasetError(f"{path}: file not found")
        entry = root / f"mat-{path.stem}-{split}-{_stat_key([path])}"
        return _cached(entry, lambda tmp: _convert_mat(path, split, tmp))
    x_path, y_path = _csv_files(src.path, split)
    entry = root / f"csv-{src.path.name}-{split}-{_stat_key([x_path, y_path])}"
    return _cached(entry, lambda tmp: _convert_csv(x_path, y_path, tmp))


# --------------------------------------------------------------------------- Dataset
def class_counts(y: np.ndarray) -> np.ndarray:
    """Images per class, ``int64 (4,)`` in :data:`CLASS_NAMES` order."""
    y = np.asarray(y)
    if y.size and (y.min() < 0 or y.max() >= len(CLASS_NAMES)):
        raise ValueError(f"labels must be 0..{len(CLASS_NAMES) - 1}, got {y.min()}..{y.max()}")
    return np.bincount(y.astype(np.int64).ravel(), minlength=len(CLASS_NAMES)).astype(np.int64)


@dataclass
class Dataset:
    """Train and test splits of SAT-4 (or its stand-in) in the toolkit's conventions.

    ``name`` is ``"sat4"``, ``"sat4-sample"`` or ``"sat4-synthetic"``; ``source`` the file or
    directory it was read from (None for the stand-in); ``is_standin`` True for synthetic data, which
    every plot and summary must say. ``fingerprint`` identifies the exact arrays (source, subset and
    seed): caches of models trained on the data set are keyed by it.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    source: str | None = None
    is_standin: bool = False
    fingerprint: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        for split in SPLITS:
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != IMAGE_SHAPE:
                raise DatasetError(
                    f"Dataset {self.name}: x_{split} is {x.dtype} {x.shape}, expected uint8 (N, 28, 28, 4)"
                )
            if y.shape != (x.shape[0],):
                raise DatasetError(f"Dataset {self.name}: y_{split} has shape {y.shape}, expected ({x.shape[0]},)")
        if not self.fingerprint:
            h = hashlib.blake2b(digest_size=8)
            h.update(self.name.encode())
            for a in (self.x_train, self.y_train, self.x_test, self.y_test):
                h.update(np.ascontiguousarray(a).tobytes())
            self.fingerprint = h.hexdigest()

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES

    def describe(self) -> str:
        """One line: name (STAND-IN flagged), sizes, class counts and source."""
        tr, te = class_counts(self.y_train), class_counts(self.y_test)
        label = f"{self.name} (STAND-IN: synthetic, not real SAT-4)" if self.is_standin else self.name
        where = f" from {self.source}" if self.source else ""
        return (
            f"{label}: {len(self.y_train):,} train / {len(self.y_test):,} test images 28x28x4 (R,G,B,NIR); "
            f"per class ({'/'.join(CLASS_NAMES)}) train {'/'.join(map(str, tr))}, "
            f"test {'/'.join(map(str, te))}{where}"
        )


def balanced_subset(y: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Indices of ``n`` images, as equal per class as the data allows, deterministic in ``seed``.

    Each class gets ``n // 4`` (the remainder and any shortfall of small classes go to the classes
    with images left); images within a class are drawn at random. Indices come back shuffled.
    """
    y = np.asarray(y)
    if n >= len(y):
        return np.random.default_rng(seed).permutation(len(y))
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(y == c) for c in range(len(CLASS_NAMES))]
    avail = np.array([len(ix) for ix in by_class])
    take = np.zeros(len(CLASS_NAMES), dtype=int)
    left = n
    while left > 0:  # water-filling: equal shares, capped by what each class has
        open_ = np.flatnonzero(take < avail)
        share = max(left // len(open_), 1)
        for c in open_:
            add = min(share, avail[c] - take[c], left)
            take[c] += add
            left -= add
            if left == 0:
                break
    picked = [rng.choice(ix, size=k, replace=False) for ix, k in zip(by_class, take) if k]
    out = np.concatenate(picked) if picked else np.zeros(0, dtype=np.int64)
    return rng.permutation(out)


def _take(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(idx, kind="stable")  # read a memory map in file order, then restore
    sorted_idx = idx[order]
    xs, ys = np.asarray(x[sorted_idx]), np.asarray(y[sorted_idx])
    inv = np.empty_like(order)
    inv[order] = np.arange(len(order))
    return xs[inv], ys[inv].astype(np.int64)


def _standin_split(split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The stand-in split of ``size`` tiles (generator seed 0), cached under :func:`cache_dir`."""
    from qgan_widgets import standin

    entry = cache_dir() / "sat4" / f"synthetic-v{standin.VERSION}-{split}-{size}"

    def convert(tmp: Path) -> None:
        x, y = standin.synthetic_sat4(size, seed=0, split=split)
        np.save(tmp / "x.npy", x)
        np.save(tmp / "y.npy", y)

    return _cached(entry, convert)


def load_dataset(
    source: str | os.PathLike | DataSource | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
    verbose: bool = True,
) -> Dataset:
    """Load SAT-4 (or the stand-in) as a :class:`Dataset`, printing one line saying which.

    ``source`` as in :func:`resolve_source` (None: ``$QGAN_SAT4_PATH`` > ``data/sat4/`` > stand-in).
    ``n_train`` / ``n_test`` draw deterministic, class-balanced subsets (see :func:`balanced_subset`)
    with ``seed``; None keeps the whole split (read-only memory maps for real data). The stand-in is
    a fixed data set of 20,000 / 5,000 tiles (more if asked for), generated once and cached.
    """
    for name, n in (("n_train", n_train), ("n_test", n_test)):
        if n is not None and (int(n) != n or n < 1):
            raise ValueError(f"{name} must be a positive integer or None, got {n!r}")
    src = resolve_source(source)
    arrays = {}
    if src.is_standin:
        name, where = STANDIN_NAME, None
        for split, n in (("train", n_train), ("test", n_test)):
            arrays[split] = _standin_split(split, max(STANDIN_SIZES[split], n or 0))
        from qgan_widgets import standin

        key = f"{STANDIN_NAME}-v{standin.VERSION}"
    else:
        for split in SPLITS:
            arrays[split] = load_sat4(src, split)
        where = str(src.path)
        n_all = len(arrays["train"][1]) + len(arrays["test"][1])
        name = "sat4-sample" if ("sample" in src.path.name.lower() or n_all < 10_000) else "sat4"
        files = [src.path] if src.kind == "mat" else [p for s in SPLITS for p in _csv_files(src.path, s)]
        key = _stat_key(files)
    for split, n in (("train", n_train), ("test", n_test)):
        x, y = arrays[split]
        if n is not None and (n < len(y) or src.is_standin):
            arrays[split] = _take(x, y, balanced_subset(y, int(n), seed + (split == "test")))
    fp = hashlib.sha1(f"{name}|{key}|{n_train}|{n_test}|{seed}".encode()).hexdigest()[:16]
    ds = Dataset(*arrays["train"], *arrays["test"], name=name, source=where,
                 is_standin=src.is_standin, fingerprint=fp)
    if verbose:
        sizes = f"{len(ds.y_train):,} train / {len(ds.y_test):,} test images"
        if src.is_standin:
            why = "as asked" if src.origin == "argument" else "no SAT-4 files found"
            print(f"[qgan_widgets] data: STAND-IN {name} (synthetic, not real SAT-4; {why}), {sizes}; {GET_REAL_DATA}.")
        else:
            print(f"[qgan_widgets] data: {name}, {sizes}, {src.describe()}")
    return ds


# --------------------------------------------------------------------------- model input
def to_float(x) -> np.ndarray:
    """Images as float32 in [0, 1]: uint8 divided by 255; float input checked and passed through."""
    a = np.asarray(x)
    if a.dtype == np.uint8:
        return a.astype(np.float32) / np.float32(255.0)
    if np.issubdtype(a.dtype, np.floating):
        if a.size and (np.nanmin(a) < 0.0 or np.nanmax(a) > 1.0):
            raise ValueError(f"float images must lie in [0, 1], got {np.nanmin(a):.3g}..{np.nanmax(a):.3g}")
        return a.astype(np.float32, copy=False)
    if np.issubdtype(a.dtype, np.integer):
        if a.size and (a.min() < 0 or a.max() > 255):
            raise ValueError(f"integer images must lie in 0..255, got {a.min()}..{a.max()}")
        return a.astype(np.float32) / np.float32(255.0)
    raise ValueError(f"images must be uint8 or float in [0, 1], got dtype {a.dtype}")


def make_tf_dataset(x, batch_size: int, shuffle: bool = True, seed: int = 0, y=None,
                    drop_remainder: bool = False, repeat: bool = False):
    """A ``tf.data.Dataset`` of float32 image batches in [0, 1] (with int64 labels if ``y`` is given).

    uint8 images stay uint8 in the pipeline and are scaled per batch, so memory holds one copy of the
    data. ``shuffle`` reshuffles every epoch, deterministically in ``seed``. Used by the VAE and the
    feature extractor; taught in notebook ``01_sat4_data``.
    """
    from qgan_widgets._tf import tf

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    a = np.asarray(x)
    if a.ndim != 4 or a.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"images must have shape (N, 28, 28, 4), got {a.shape}")
    if a.dtype != np.uint8:
        a = to_float(a)
    tensors = a if y is None else (a, np.asarray(y, dtype=np.int64))
    if y is not None and len(tensors[1]) != len(a):
        raise ValueError(f"{len(tensors[1])} labels for {len(a)} images")
    ds = tf.data.Dataset.from_tensor_slices(tensors)
    if shuffle:
        ds = ds.shuffle(min(len(a), 50_000), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)

    def scale(images):
        return tf.cast(images, tf.float32) / 255.0 if images.dtype == tf.uint8 else images

    ds = ds.map((lambda xb, yb: (scale(xb), yb)) if y is not None else scale,
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
