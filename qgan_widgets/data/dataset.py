"""SAT-4 for notebooks and models: which data to use, loading, the :class:`Dataset`, model input.

Reading order: :func:`resolve_source` (which data: an explicit path, ``$QGAN_SAT4_PATH``,
``data/sat4/`` or the built-in stand-in); :func:`load_sat4` (one split of the real files, converted
once to a memory-mapped ``.npy`` cache); :class:`Dataset` and :func:`load_dataset` (what notebooks
and the pipeline call); :func:`to_float` and :func:`make_tf_dataset` (model input). Taught in
notebook ``01_sat4_data``; ``docs/DATA.md`` says where to get the real files.

The conventions (:data:`BANDS`, :data:`CLASS_NAMES`, :data:`IMAGE_SHAPE`, :class:`DatasetError`)
and the file readers live in :mod:`qgan_widgets.data.sat4`, :func:`cache_dir` and the cache in
:mod:`qgan_widgets.data.cache`; students reach all of them through the face :mod:`qgan_widgets.data`
(``qw.data.CLASS_NAMES``, ``qw.data.cache_dir()``, ...).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qgan_widgets.data import sat4
from qgan_widgets.data.cache import cache_dir, cached, checkout_root, stat_key
from qgan_widgets.data.sat4 import CLASS_NAMES, CSV_NAMES, IMAGE_SHAPE, MAT_NAME, SPLITS, DatasetError

GET_REAL_DATA = (
    "for real SAT-4 get the Kaggle 'DeepSat (SAT-4) Airborne Dataset' CSVs or sat-4-full.mat from "
    "csc.lsu.edu/~saikat/deepsat/, and put them in data/sat4/ or point QGAN_SAT4_PATH at them (docs/DATA.md)"
)
STANDIN_NAME = "sat4-synthetic"
STANDIN_SIZES = {"train": 20_000, "test": 5_000}
"""Size of the cached stand-in data set (subsets are drawn from it; larger requests extend it)."""


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
        entry = root / f"mat-{path.stem}-{split}-{stat_key([path])}"
        return cached(entry, lambda tmp: sat4.convert_mat(path, split, tmp))
    x_path, y_path = sat4.csv_files(src.path, split)
    entry = root / f"csv-{src.path.name}-{split}-{stat_key([x_path, y_path])}"
    return cached(entry, lambda tmp: sat4.convert_csv(x_path, y_path, tmp))


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
    from qgan_widgets.data import standin

    entry = cache_dir() / "sat4" / f"synthetic-v{standin.VERSION}-{split}-{size}"

    def convert(tmp: Path) -> None:
        x, y = standin.synthetic_sat4(size, seed=0, split=split)
        np.save(tmp / "x.npy", x)
        np.save(tmp / "y.npy", y)

    return cached(entry, convert)


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
        from qgan_widgets.data import standin

        key = f"{STANDIN_NAME}-v{standin.VERSION}"
    else:
        for split in SPLITS:
            arrays[split] = load_sat4(src, split)
        where = str(src.path)
        n_all = len(arrays["train"][1]) + len(arrays["test"][1])
        name = "sat4-sample" if ("sample" in src.path.name.lower() or n_all < 10_000) else "sat4"
        files = [src.path] if src.kind == "mat" else [p for s in SPLITS for p in sat4.csv_files(src.path, s)]
        key = stat_key(files)
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
