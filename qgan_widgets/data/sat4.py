"""SAT-4's conventions and its two file releases, read into arrays.

SAT-4 (DeepSat, Basu et al. 2015) holds 500,000 aerial image patches of 28x28 pixels in four bands
(R, G, B, near infrared), labelled barren land, trees, grassland or none. This module holds the
conventions every other module uses (see ``docs/DESIGN.md``, "Data conventions"):

* images ``uint8 (N, 28, 28, 4)``, bands ``R, G, B, NIR`` (:data:`BANDS`);
* labels ``int64 (N,)``, classes ``0 barren land, 1 trees, 2 grassland, 3 none`` (:data:`CLASS_NAMES`);

and the readers of the two public releases: :func:`convert_mat` (the official ``sat-4-full.mat``,
MATLAB v5 via scipy or a v7.3 re-save via h5py) and :func:`convert_csv` (the Kaggle CSVs, read in
chunks). Each writes one split as ``x.npy`` / ``y.npy`` into a directory, checking everything and
raising :class:`DatasetError` naming the file and what is wrong. :func:`qgan_widgets.data.dataset.load_sat4`
runs them once per file through the cache (:mod:`qgan_widgets.data.cache`). Taught in notebook
``01_sat4_data``; ``docs/DATA.md`` says where to get the real files.
"""
from __future__ import annotations

import contextlib
import errno
import os
import signal
import threading
import warnings
import zlib
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

_CSV_CHUNK_ROWS = 2_000


class DatasetError(ValueError):
    """A SAT-4 source is missing or malformed; the message names the file and what is wrong."""


def unreadable(path: Path, err: OSError) -> DatasetError:
    """A DatasetError for a file the operating system will not let us read (permissions, I/O errors)."""
    name = getattr(err, "filename", None) or path
    if isinstance(err, PermissionError):
        return DatasetError(f"{name}: cannot be read (permission denied): give your user read access "
                            f"(e.g. `chmod a+r {name}`) or copy the file somewhere readable")
    return DatasetError(f"{name}: cannot be read ({err.strerror or type(err).__name__}): check the file and its disk")


@contextlib.contextmanager
def interrupts_stay_interrupts():
    """Yield a flag list that is non-empty once Ctrl-C (SIGINT) arrived while the block ran.

    pandas' C parser can turn a KeyboardInterrupt raised inside its reads into a ``ParserError``;
    with this flag the caller re-raises it as the interrupt it was (main thread only; elsewhere the
    flag stays empty and nothing changes).
    """
    seen: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):  # SIGINT ignored or left to the OS: nothing to translate
        yield seen
        return

    def handler(signum, frame):
        seen.append(True)
        previous(signum, frame)

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not allowed here (e.g. an embedded interpreter)
        yield seen
        return
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)


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
        if size == 128:
            return "it ends right after its 128-byte header: no variables at all"
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
    if n == 0:
        raise DatasetError(f"{path}: {xk} holds 0 images (shape {x.shape}): nothing to train on")
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
        if n == 0:
            raise DatasetError(f"{path}: {xk} holds 0 images (shape {tuple(dx.shape[::-1])}): nothing to train on")
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


def convert_mat(path: Path, split: str, tmp: Path) -> None:
    try:
        if path.stat().st_size == 0:
            raise DatasetError(f"{path}: empty file (truncated download?)")
        import h5py

        if h5py.is_hdf5(str(path)):
            _mat_v73(path, split, tmp)
        else:
            _mat_v5(path, split, tmp)
    except OSError as err:
        if not _about_source(err, path):
            raise
        raise unreadable(path, err) from None


def _about_source(err: OSError, path: Path) -> bool:
    """Whether an OSError is about reading the source ``path`` (permissions, a directory, an I/O error),
    not about writing the cache (an error naming another file, e.g. the cache's ``x.npy``)."""
    name = getattr(err, "filename", None)
    if name is not None and Path(name) != Path(path):
        return False
    return isinstance(err, (PermissionError, IsADirectoryError)) or getattr(err, "errno", None) == errno.EIO


# --------------------------------------------------------------------------- the Kaggle CSVs
def _count_rows(path: Path) -> tuple[int, bool]:
    """(number of data rows, has a text header) of a CSV file, read in binary blocks."""
    newlines, last, size = 0, b"", 0
    try:
        with open(path, "rb") as f:
            while block := f.read(1 << 24):
                newlines += block.count(b"\n")
                last, size = block[-1:], size + len(block)
    except OSError as err:
        raise unreadable(path, err) from None
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
    header = _has_header(path, warn=True)
    with interrupts_stay_interrupts() as interrupted:
        try:
            return _parse_csv(path, ncols, what, sink, header, pd)
        except (pd.errors.ParserError, ValueError, UnicodeDecodeError, zlib.error, OSError) as exc:
            if interrupted:  # Ctrl-C that pandas reported as a parse error
                raise KeyboardInterrupt from exc
            if isinstance(exc, DatasetError):
                raise
            if isinstance(exc, pd.errors.ParserError):
                raise DatasetError(f"{path}: ragged or malformed CSV, every row needs {ncols} values ({what}): "
                                   f"{exc}") from exc
            if isinstance(exc, OSError):
                if not _about_source(exc, path):
                    raise  # e.g. writing the cache entry: not the CSV's fault
                raise unreadable(path, exc) from None
            raise DatasetError(f"{path}: unreadable CSV ({what}): {exc}") from exc


def _parse_csv(path: Path, ncols: int, what: str, sink, header: bool, pd) -> int:
    """The chunked parse of :func:`_read_csv_rows` (errors are translated there)."""
    start = 0
    reader = pd.read_csv(path, header=None, skiprows=int(header), chunksize=_CSV_CHUNK_ROWS,
                         engine="c", skip_blank_lines=True, low_memory=False, na_filter=False)
    for chunk in reader:
        line0 = start + 1 + int(header)  # file line of the chunk's first row
        if chunk.shape[1] != ncols:
            raise DatasetError(
                f"{path}: ragged or wrong-width rows: {chunk.shape[1]} values at line {line0}, "
                f"expected {ncols} ({what})"
            )
        values = _numeric(chunk, path, line0)
        if np.isnan(values).any():  # cells missing at the end of a short row (empty cells are named above)
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
    if start == 0:
        raise DatasetError(f"{path}: no data rows ({what})")
    return start


def _has_header(path: Path, warn: bool = False) -> bool:
    """Whether the first line is all text (a header). The official CSVs have none: say so when skipping it."""
    try:
        with open(path, "rb") as f:
            first = f.readline(1 << 16).decode("utf-8", "replace").strip()
    except OSError as err:
        raise unreadable(path, err) from None
    tokens = [t.strip() for t in first.split(",")]
    nonempty = [t for t in tokens if t]
    header = bool(nonempty) and not any(_is_number(t) for t in nonempty)
    if header and warn:
        warnings.warn(f"{path}: skipping its first line as a header ({first[:60]!r}{'...' if len(first) > 60 else ''}); "
                      f"the official SAT-4 CSVs have no header row, so check that no data row was lost",
                      UserWarning, stacklevel=4)
    return header


def _numeric(chunk, path: Path, line0: int) -> np.ndarray:
    """A chunk as float64 (small: one chunk), or DatasetError naming the first non-numeric cell."""
    import pandas as pd

    if all(np.issubdtype(dt, np.number) for dt in chunk.dtypes):
        return chunk.to_numpy(dtype=np.float64)
    for j, col in enumerate(chunk.columns):
        if np.issubdtype(chunk.dtypes.iloc[j], np.number):
            continue
        raw = chunk[col]
        coerced = pd.to_numeric(raw, errors="coerce")
        bad = coerced.isna() & raw.notna()
        if bad.any():
            i = int(np.argmax(bad.to_numpy()))
            cell = raw.iloc[i]
            if isinstance(cell, str) and not cell.strip():
                fields = _fields_on_line(path, line0 + i)
                if fields is not None and fields < len(chunk.columns):  # a short row, padded by the parser
                    raise DatasetError(f"{path}: ragged row at line {line0 + i}: {fields} values, expected "
                                       f"{len(chunk.columns)}")
                raise DatasetError(f"{path}: empty cell at line {line0 + i}, column {j + 1} (every cell needs a "
                                   f"number 0-255)")
            raise DatasetError(
                f"{path}: non-numeric value {cell!r} at line {line0 + i}, column {j + 1} (every cell needs a "
                f"number 0-255)"
            )
        chunk[col] = coerced
    return chunk.to_numpy(dtype=np.float64)


def _fields_on_line(path: Path, lineno: int) -> int | None:
    """How many comma-separated fields line ``lineno`` (1-based) of a file holds (None if unreadable)."""
    try:
        with open(path, "rb") as f:
            for n, line in enumerate(f, 1):
                if n == lineno:
                    return line.rstrip(b"\r\n").count(b",") + 1
    except OSError:
        return None
    return None


def csv_files(directory: Path, split: str) -> tuple[Path, Path]:
    xname, yname = CSV_NAMES[split]
    x_path, y_path = directory / xname, directory / yname
    for p in (x_path, y_path):
        if not p.is_file():
            raise DatasetError(f"{p}: file not found (the Kaggle SAT-4 release has {xname} and {yname})")
    return x_path, y_path


def convert_csv(x_path: Path, y_path: Path, tmp: Path) -> None:
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

