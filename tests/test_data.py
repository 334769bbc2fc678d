"""SAT-4 loading (.mat v5 / v7.3, Kaggle CSV), bad inputs, the cache, source resolution, Dataset.

Covers ``data`` and the modules it is built on: ``sat4`` (conventions, file readers) and ``cache``.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from qgan_widgets.data import cache
from qgan_widgets.data import dataset as data
from qgan_widgets.data import sat4
from qgan_widgets.data import DatasetError

TRAIN_COUNTS = [19, 16, 14, 31]  # the sample's README
TEST_COUNTS = [4, 6, 1, 9]


def _raw(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The sample read independently of the loader: scipy, MATLAB (H, W, C, N) -> (N, H, W, C)."""
    m = scipy.io.loadmat(str(path))
    return m[f"{split}_x"].transpose(3, 0, 1, 2), m[f"{split}_y"].argmax(axis=0)


def _mat(path: Path, n: int = 6, **override) -> Path:
    """A small official-layout .mat file, with keys replaced or removed (value None) by ``override``."""
    rng = np.random.default_rng(0)
    y = np.eye(4)[:, np.arange(n) % 4]
    content = {"train_x": rng.integers(0, 256, (28, 28, 4, n), dtype=np.uint8), "train_y": y,
               "test_x": rng.integers(0, 256, (28, 28, 4, n), dtype=np.uint8), "test_y": y}
    content.update(override)
    scipy.io.savemat(str(path), {k: v for k, v in content.items() if v is not None})
    return path


def _write_csv(directory: Path, split: str, x: np.ndarray, y: np.ndarray, header: bool = False) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    xname, yname = sat4.CSV_NAMES[split]
    np.savetxt(directory / xname, x.reshape(len(x), -1), fmt="%d", delimiter=",",
               header=",".join(f"pixel{i}" for i in range(sat4.PIXELS)) if header else "", comments="")
    np.savetxt(directory / yname, np.eye(4, dtype=int)[y], fmt="%d", delimiter=",")


def _csv_dir(tmp_path: Path, n: int = 9, seed: int = 0) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 28, 28, 4), dtype=np.uint8)
    y = np.arange(n) % 4
    d = tmp_path / f"kaggle{seed}"
    for split in sat4.SPLITS:
        _write_csv(d, split, x, y)
    return d, x, y


def _cache_entries() -> list[Path]:
    root = data.cache_dir() / "sat4"
    return sorted(root.iterdir()) if root.is_dir() else []


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("QGAN_CACHE_DIR", str(cache))
    return cache


# ----------------------------------------------------------------------------- real files
@pytest.mark.parametrize("split,counts", [("train", TRAIN_COUNTS), ("test", TEST_COUNTS)])
def test_loader_reads_the_real_sample_mat_exactly(sat4_sample_path, split, counts):
    x, y = data.load_sat4(sat4_sample_path, split)
    raw_x, raw_y = _raw(sat4_sample_path, split)
    assert x.dtype == np.uint8 and x.shape == (sum(counts), 28, 28, 4)
    assert y.dtype == np.int64 and y.shape == (sum(counts),)
    np.testing.assert_array_equal(x, raw_x)
    np.testing.assert_array_equal(y, raw_y)
    assert data.class_counts(y).tolist() == counts


def test_kaggle_csv_built_from_the_sample_reads_back_exactly(sat4_sample_path, tmp_path, monkeypatch):
    monkeypatch.setattr(sat4, "_CSV_CHUNK_ROWS", 7)  # several chunks per file
    d = tmp_path / "kaggle"
    for split in sat4.SPLITS:
        _write_csv(d, split, *_raw(sat4_sample_path, split))
    for split, counts in (("train", TRAIN_COUNTS), ("test", TEST_COUNTS)):
        x, y = data.load_sat4(d, split)
        raw_x, raw_y = _raw(sat4_sample_path, split)
        np.testing.assert_array_equal(x, raw_x)
        np.testing.assert_array_equal(y, raw_y)
        assert data.class_counts(y).tolist() == counts
    # one of the files names the release too, and a header row is recognised and skipped (with a warning)
    x, _ = data.load_sat4(d / "y_test_sat4.csv", "train")
    np.testing.assert_array_equal(x, _raw(sat4_sample_path, "train")[0])
    _write_csv(tmp_path / "with_header", "train", *_raw(sat4_sample_path, "train"), header=True)
    with pytest.warns(UserWarning, match="skipping its first line as a header"):
        x, y = data.load_sat4(tmp_path / "with_header" / "X_train_sat4.csv", "train")
    np.testing.assert_array_equal(x, _raw(sat4_sample_path, "train")[0])


def test_csv_reads_exactly_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(sat4, "_CSV_CHUNK_ROWS", 4)
    d, x, y = _csv_dir(tmp_path, n=11)
    gx, gy = data.load_sat4(d, "test")
    np.testing.assert_array_equal(gx, x)
    np.testing.assert_array_equal(gy, y)


def test_mat_labels_as_rows_are_accepted(tmp_path):
    y = np.eye(4)[[3, 2, 1, 0, 0, 1]]  # (N, 4) rows instead of the official (4, N) columns
    _, gy = data.load_sat4(_mat(tmp_path / "rows.mat", train_y=y), "train")
    assert gy.tolist() == [3, 2, 1, 0, 0, 1]


def test_mat_v73_hdf5_reads_exactly(tmp_path):
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (28, 28, 4, 10), dtype=np.uint8)  # MATLAB order (H, W, C, N)
    y = np.eye(4)[:, rng.integers(0, 4, 10)]
    path = tmp_path / "resaved-v73.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        for split in sat4.SPLITS:  # MATLAB v7.3 stores arrays transposed (column-major)
            f.create_dataset(f"{split}_x", data=x.T)
            f.create_dataset(f"{split}_y", data=y.T)
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .")
    gx, gy = data.load_sat4(path, "train")
    np.testing.assert_array_equal(gx, x.transpose(3, 0, 1, 2))
    np.testing.assert_array_equal(gy, y.argmax(axis=0))
    with h5py.File(tmp_path / "nokeys.mat", "w") as f:
        f.create_dataset("train_x", data=x.T)
    with pytest.raises(DatasetError, match=r"nokeys\.mat.*missing key.*train_y"):
        data.load_sat4(tmp_path / "nokeys.mat", "train")


# ----------------------------------------------------------------------------- bad input
def _truncated(tmp_path, sample):
    p = tmp_path / "truncated.mat"
    p.write_bytes(Path(sample).read_bytes()[:50_000])
    return p


def _garbage(tmp_path, sample):
    p = tmp_path / "garbage.mat"
    p.write_bytes(b"MATLAB 5.0 MAT-file" + bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)))
    return p


def _empty(path):
    path.write_bytes(b"")
    return path


MAT_CASES = {
    "missing file": (lambda t: t / "absent.mat", "not found"),
    "empty file": (lambda t: _empty(t / "empty.mat"), "empty"),
    "missing keys": (lambda t: _mat(t / "keys.mat", train_y=None), "missing key.*train_y"),
    "wrong shape": (lambda t: _mat(t / "shape.mat", train_x=np.zeros((28, 28, 3, 6), np.uint8)),
                    r"train_x has shape \(28, 28, 3, 6\)"),
    "wrong dtype": (lambda t: _mat(t / "dtype.mat", train_x=np.zeros((28, 28, 4, 6))), "expected uint8"),
    "labels not one-hot": (lambda t: _mat(t / "onehot.mat", train_y=np.ones((4, 6))), "not one-hot"),
    "label values": (lambda t: _mat(t / "values.mat", train_y=np.eye(4)[:, [0, 1, 2, 3, 0, 1]] * 2), "not one-hot"),
    "count mismatch": (lambda t: _mat(t / "count.mat", train_y=np.eye(4)[:, [0, 1, 2, 3, 0]]), "count mismatch"),
    "labels wrong shape": (lambda t: _mat(t / "yshape.mat", train_y=np.eye(6)), r"\(4, N\)"),
}


@pytest.mark.parametrize("case", list(MAT_CASES))
def test_bad_mat_files_raise_dataset_error_naming_the_file(tmp_path, case):
    make, what = MAT_CASES[case]
    path = make(tmp_path)
    with pytest.raises(DatasetError, match=what) as info:
        data.load_sat4(path, "train")
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("make", [_truncated, _garbage])
def test_truncated_or_corrupt_mat_raises_dataset_error(sat4_sample_path, tmp_path, make):
    path = make(tmp_path, sat4_sample_path)
    with pytest.raises(DatasetError, match="truncated or corrupt") as info:
        data.load_sat4(path, "train")
    assert str(path) in str(info.value)
    assert _cache_entries() == [] or all(".partial" not in p.name for p in _cache_entries())


def _edit_line(path: Path, line: int, edit) -> None:
    lines = path.read_text().splitlines()
    lines[line - 1] = edit(lines[line - 1])
    path.write_text("\n".join(lines) + "\n")


CSV_CASES = {
    "short row": ("X", 3, lambda s: s.rsplit(",", 5)[0], "ragged row at line 3"),
    "long row": ("X", 5, lambda s: s + ",7", "ragged or malformed"),
    "non-numeric": ("X", 4, lambda s: s.replace(",", ",abc,", 1).rsplit(",", 1)[0], "non-numeric value 'abc' at line 4"),
    "value above 255": ("X", 2, lambda s: "256" + s[s.index(","):], "value 256 at line 2, column 1 is outside 0-255"),
    "negative value": ("X", 6, lambda s: s.rsplit(",", 1)[0] + ",-1", "outside 0-255"),
    "fractional value": ("X", 2, lambda s: "1.5" + s[s.index(","):], "non-integer value 1.5"),
    "labels not one-hot": ("y", 2, lambda s: "1,1,0,0", "not one-hot"),
    "labels non-numeric": ("y", 3, lambda s: "0,x,0,1", "non-numeric value 'x'"),
    "labels wrong width": ("y", 1, lambda s: s + ",0", "ragged"),
    # issue 13, item 9: an empty or 'nan' cell is named as such, not as a ragged row
    "empty cell": ("X", 3, lambda s: s.replace(",", ",,", 1).rsplit(",", 1)[0], "empty cell at line 3, column 2"),
    "nan cell": ("X", 4, lambda s: "nan" + s[s.index(","):], "non-numeric value 'nan' at line 4, column 1"),
    "empty last cell": ("X", 2, lambda s: s.rsplit(",", 1)[0] + ",", "empty cell at line 2, column 3136"),
}


@pytest.mark.parametrize("case", list(CSV_CASES))
def test_bad_csv_files_raise_dataset_error_naming_the_file(tmp_path, fresh_cache, case):
    which, line, edit, what = CSV_CASES[case]
    d, _, _ = _csv_dir(tmp_path)
    bad = d / ("X_train_sat4.csv" if which == "X" else "y_train_sat4.csv")
    _edit_line(bad, line, edit)
    with pytest.raises(DatasetError, match=what) as info:
        data.load_sat4(d, "train")
    assert str(bad) in str(info.value)
    assert _cache_entries() == []  # nothing half-written
    data.load_sat4(d, "test")  # the other split is fine


def test_a_text_first_row_is_skipped_only_with_a_warning(tmp_path, fresh_cache):
    """The official CSVs have no header: skipping an all-text first line is said, not silent (item 9)."""
    d, x, y = _csv_dir(tmp_path)
    path = d / "X_train_sat4.csv"
    path.write_text("pixel" + ",pixel".join(str(i) for i in range(1, sat4.PIXELS)) + "\n" + path.read_text())
    with pytest.warns(UserWarning, match=r"X_train_sat4\.csv: skipping its first line as a header .*no header row"):
        gx, _ = data.load_sat4(d, "train")
    np.testing.assert_array_equal(gx, x)


def test_mat_files_cut_after_the_header_or_without_images_are_refused(tmp_path, fresh_cache):
    """Item 9: a .mat cut at exactly 128 bytes is 'truncated', not 'missing keys'; 0 images are refused."""
    cut = tmp_path / "cut.mat"
    cut.write_bytes(_mat(tmp_path / "whole.mat").read_bytes()[:128])
    with pytest.raises(DatasetError, match=r"cut\.mat: truncated or corrupt .*128-byte header"):
        data.load_sat4(cut, "train")
    empty = _mat(tmp_path / "none.mat", train_x=np.zeros((28, 28, 4, 0), np.uint8), train_y=np.zeros((4, 0)))
    with pytest.raises(DatasetError, match=r"none\.mat: train_x holds 0 images"):
        data.load_sat4(empty, "train")
    assert _cache_entries() == []


def test_unreadable_files_raise_dataset_error_naming_the_file_and_the_fix(tmp_path, fresh_cache, monkeypatch):
    """Item 7: a file the OS will not let us read (tests run as root, so the refusal is simulated)."""
    import builtins

    import h5py

    mat = _mat(tmp_path / "locked.mat")

    def refuse(name, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(name))

    monkeypatch.setattr(h5py, "is_hdf5", refuse)
    with pytest.raises(DatasetError, match=r"locked\.mat: cannot be read \(permission denied\).*chmod a\+r"):
        data.load_sat4(mat, "train")
    monkeypatch.undo()
    d, _, _ = _csv_dir(tmp_path)
    locked = d / "X_train_sat4.csv"
    real_open = builtins.open

    def open_but_locked(file, *args, **kwargs):
        if Path(str(file)) == locked:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", open_but_locked)
    with pytest.raises(DatasetError, match=r"X_train_sat4\.csv: cannot be read \(permission denied\)"):
        data.load_sat4(d, "train")
    assert _cache_entries() == [] or all(".partial" not in p.name for p in _cache_entries())


def test_ctrl_c_during_csv_parsing_stays_an_interrupt(tmp_path, fresh_cache, monkeypatch):
    """Item 4: pandas' C parser can report a Ctrl-C inside its reads as a ParserError; it must reach
    the user as KeyboardInterrupt, not as 'malformed CSV'. Reproduced deterministically: the reader
    receives SIGINT and, like pandas' tokenizer, turns it into a ParserError."""
    import signal

    import pandas as pd

    d, _, _ = _csv_dir(tmp_path)
    real = pd.read_csv
    before = signal.getsignal(signal.SIGINT)
    # As in a terminal: Ctrl-C raises KeyboardInterrupt (a background job may inherit SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def read_csv_hit_by_ctrl_c(path, *args, **kwargs):
        if Path(str(path)).name != "X_train_sat4.csv":
            return real(path, *args, **kwargs)

        def chunks():
            try:
                os.kill(os.getpid(), signal.SIGINT)
            except KeyboardInterrupt:
                pass
            raise pd.errors.ParserError("Error tokenizing data. C error: Calling read(nbytes) on source failed.")
            yield  # a generator, like pandas' chunk reader

        return chunks()

    monkeypatch.setattr(pd, "read_csv", read_csv_hit_by_ctrl_c)
    try:
        with pytest.raises(KeyboardInterrupt):
            data.load_sat4(d, "train")
        assert _cache_entries() == []
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back
    finally:
        signal.signal(signal.SIGINT, before)
    monkeypatch.undo()
    x, _ = data.load_sat4(d, "train")  # and a later load works
    assert len(x) == 9


def test_stale_partial_directories_of_dead_processes_are_cleaned(tmp_path, fresh_cache):
    """Item 6: a killed first load leaves a .partial directory (a full-size memory map); the next load
    removes those no live process owns, and keeps a live one's."""
    import subprocess
    import sys

    d, _, _ = _csv_dir(tmp_path)
    root = data.cache_dir() / "sat4"
    root.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = root / f".csv-kaggle0-train-abc.{dead.pid}.x1y2.partial"
    live = root / f".csv-kaggle0-test-abc.{os.getppid()}.z3w4.partial"
    for p in (stale, live):
        p.mkdir()
        (p / "x.npy").write_bytes(b"\0" * 1000)
    data.load_sat4(d, "train")
    assert not stale.exists() and live.exists()
    assert not [p for p in root.iterdir() if p.name.endswith(".partial") and p != live]


def test_csv_count_mismatch_and_missing_files(tmp_path):
    d, _, _ = _csv_dir(tmp_path)
    y_path = d / "y_train_sat4.csv"
    y_path.write_text("\n".join(y_path.read_text().splitlines()[:-2]) + "\n")
    with pytest.raises(DatasetError, match="7 labels for 9 images") as info:
        data.load_sat4(d, "train")
    assert str(y_path) in str(info.value)
    (d / "X_test_sat4.csv").unlink()
    with pytest.raises(DatasetError, match=r"X_test_sat4\.csv: file not found"):
        data.load_sat4(d, "test")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no SAT-4 files"):
        data.load_sat4(empty, "train")
    with pytest.raises(DatasetError, match="split must be"):
        data.load_sat4(d, "validation")


# ----------------------------------------------------------------------------- the cache
def test_cache_hit_skips_conversion_and_changes_invalidate(tmp_path, fresh_cache, monkeypatch):
    path = _mat(tmp_path / "small.mat")
    x1, y1 = data.load_sat4(path, "train")
    assert isinstance(x1, np.memmap) and len(_cache_entries()) == 1

    def boom(*args):
        raise AssertionError("converted again despite a valid cache")

    monkeypatch.setattr(sat4, "convert_mat", boom)
    x2, y2 = data.load_sat4(path, "train")
    assert isinstance(x2, np.memmap)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    monkeypatch.undo()
    monkeypatch.setenv("QGAN_CACHE_DIR", str(fresh_cache))
    new = _mat(tmp_path / "small.mat", n=8)  # same name, new size and mtime
    os.utime(new, ns=(os.stat(new).st_atime_ns, os.stat(new).st_mtime_ns + 10**9))
    x3, _ = data.load_sat4(new, "train")
    assert len(x3) == 8 and len(_cache_entries()) == 2


def test_failed_or_interrupted_conversion_leaves_no_cache(tmp_path, fresh_cache, monkeypatch):
    monkeypatch.setattr(sat4, "_CSV_CHUNK_ROWS", 3)
    d, _, _ = _csv_dir(tmp_path, n=12)
    _edit_line(d / "X_train_sat4.csv", 11, lambda s: s.rsplit(",", 1)[0] + ",300")  # in the last chunk
    with pytest.raises(DatasetError, match="line 11"):
        data.load_sat4(d, "train")
    assert _cache_entries() == []

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sat4, "_copy_images", interrupted)
    with pytest.raises(KeyboardInterrupt):
        data.load_sat4(_mat(tmp_path / "ok.mat"), "train")
    assert _cache_entries() == []
    monkeypatch.undo()
    monkeypatch.setenv("QGAN_CACHE_DIR", str(fresh_cache))
    x, _ = data.load_sat4(tmp_path / "ok.mat", "train")
    assert len(x) == 6 and len(_cache_entries()) == 1


def test_cache_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("QGAN_CACHE_DIR", str(tmp_path / "c"))
    assert cache.cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()
    monkeypatch.delenv("QGAN_CACHE_DIR")
    root = cache.checkout_root()
    assert root is not None and (root / "pyproject.toml").is_file()
    checkout = tmp_path / "checkout"  # a stand-in checkout: the test must not write into the real one
    monkeypatch.setattr(cache, "checkout_root", lambda: checkout)
    assert cache.cache_dir() == checkout / "data" / "cache"
    monkeypatch.setattr(cache, "checkout_root", lambda: None)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "qgan_widgets"


# ----------------------------------------------------------------------------- which data
def test_resolution_order(tmp_path, monkeypatch):
    sat4_dir = tmp_path / "data_sat4"
    sat4_dir.mkdir()
    monkeypatch.setattr(data, "default_data_dir", lambda: sat4_dir)
    src = data.resolve_source()
    assert (src.kind, src.origin, src.path) == ("synthetic", "built-in", None)
    assert "STAND-IN" in src.describe() and "Kaggle" in src.describe() and "csc.lsu.edu/~saikat/deepsat" in src.describe()

    d, _, _ = _csv_dir(tmp_path)
    for name in ("X_train_sat4.csv", "y_train_sat4.csv"):
        shutil.copy(d / name, sat4_dir / name)
    src = data.resolve_source()
    assert (src.kind, src.origin, src.path) == ("csv", "data/sat4", sat4_dir)

    env_mat = _mat(tmp_path / "env.mat")
    monkeypatch.setenv("QGAN_SAT4_PATH", str(env_mat))
    src = data.resolve_source()
    assert (src.kind, src.origin, src.path) == ("mat", "QGAN_SAT4_PATH", env_mat)
    assert str(env_mat) in src.describe()

    explicit = _mat(tmp_path / "explicit.mat")
    assert data.resolve_source(explicit) == data.DataSource("mat", explicit, "argument")
    assert data.resolve_source(str(d)) == data.DataSource("csv", d, "argument")
    assert data.resolve_source(d / "X_test_sat4.csv") == data.DataSource("csv", d, "argument")
    assert data.resolve_source("sat4-synthetic").kind == "synthetic"

    with pytest.raises(DatasetError, match=r"nowhere\.mat: file not found"):
        data.resolve_source(tmp_path / "nowhere.mat")
    monkeypatch.setenv("QGAN_SAT4_PATH", str(tmp_path / "gone"))
    with pytest.raises(DatasetError, match="gone: file not found.*QGAN_SAT4_PATH"):
        data.resolve_source()
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match=r"notes\.txt: not a SAT-4 source"):
        data.resolve_source(tmp_path / "notes.txt")


def test_load_dataset_on_the_stand_in(capsys, monkeypatch):
    monkeypatch.setattr(data, "STANDIN_SIZES", {"train": 1024, "test": 256})  # small cached stand-in
    ds = data.load_dataset(n_train=400, n_test=120, seed=3)
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "STAND-IN" in line and "Kaggle" in line and "deepsat" in line
    assert ds.is_standin and ds.name == "sat4-synthetic" and ds.source is None
    assert ds.x_train.shape == (400, 28, 28, 4) and ds.x_train.dtype == np.uint8
    assert ds.y_train.dtype == np.int64 and ds.x_test.shape == (120, 28, 28, 4)
    assert data.class_counts(ds.y_train).tolist() == [100] * 4
    assert data.class_counts(ds.y_test).tolist() == [30] * 4
    assert "STAND-IN" in ds.describe() and "\n" not in ds.describe()
    again = data.load_dataset(n_train=400, n_test=120, seed=3, verbose=False)
    assert capsys.readouterr().out == ""
    np.testing.assert_array_equal(again.x_train, ds.x_train)
    assert again.fingerprint == ds.fingerprint
    other = data.load_dataset(n_train=400, n_test=120, seed=4, verbose=False)
    assert not np.array_equal(other.x_train, ds.x_train) and other.fingerprint != ds.fingerprint
    entries = len(_cache_entries())
    big = data.load_dataset(n_train=1100, n_test=10, verbose=False)  # more than the cached 1024
    assert len(big.y_train) == 1100 and len(_cache_entries()) == entries + 1


def test_load_dataset_on_the_real_sample(sat4_sample_path, capsys):
    ds = data.load_dataset(sat4_sample_path)
    assert "sat4-sample" in capsys.readouterr().out
    assert not ds.is_standin and ds.name == "sat4-sample" and ds.source == str(sat4_sample_path)
    assert data.class_counts(ds.y_train).tolist() == TRAIN_COUNTS
    sub = data.load_dataset(sat4_sample_path, n_train=40, n_test=10, seed=1, verbose=False)
    assert data.class_counts(sub.y_train).tolist() == [10, 10, 10, 10]  # balanced
    assert data.class_counts(sub.y_test).tolist() == [3, 3, 1, 3]  # grassland has only 1
    x, y = _raw(sat4_sample_path, "train")
    for img, label in zip(sub.x_train, sub.y_train):  # each drawn image is a real one, labelled right
        match = np.flatnonzero((x == img).all(axis=(1, 2, 3)))
        assert len(match) >= 1 and label == y[match[0]]


def test_balanced_subset_is_deterministic_and_fair():
    y = np.array([0] * 50 + [1] * 5 + [2] * 200 + [3] * 45)
    a = data.balanced_subset(y, 40, seed=7)
    assert np.array_equal(a, data.balanced_subset(y, 40, seed=7))
    assert len(np.unique(a)) == 40
    assert data.class_counts(y[a]).tolist() == [12, 5, 12, 11]  # 10 each, then the small class's share
    assert not np.array_equal(a, data.balanced_subset(y, 40, seed=8))


def test_dataset_validates_its_arrays():
    x = np.zeros((3, 28, 28, 4), np.uint8)
    with pytest.raises(DatasetError, match="x_train"):
        data.Dataset(x.astype(np.float32), np.zeros(3, np.int64), x, np.zeros(3, np.int64), name="bad")
    with pytest.raises(DatasetError, match="y_test"):
        data.Dataset(x, np.zeros(3, np.int64), x, np.zeros(2, np.int64), name="bad")
    ds = data.Dataset(x, np.zeros(3, np.int64), x, np.zeros(3, np.int64), name="mine")
    assert len(ds.fingerprint) == 16


# ----------------------------------------------------------------------------- model input
def test_to_float_and_class_counts():
    x = np.array([[0, 128, 255]], dtype=np.uint8)
    f = data.to_float(x)
    assert f.dtype == np.float32 and f.min() == 0.0 and f.max() == 1.0
    np.testing.assert_allclose(f, [[0, 128 / 255, 1]])
    assert data.to_float(f) is f or np.array_equal(data.to_float(f), f)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        data.to_float(np.array([1.5]))
    assert data.class_counts(np.array([0, 3, 3, 1])).tolist() == [1, 1, 0, 2]
    with pytest.raises(ValueError):
        data.class_counts(np.array([4]))


def test_make_tf_dataset_scales_batches_and_shuffles_deterministically():
    x = np.random.default_rng(0).integers(0, 256, (10, 28, 28, 4), dtype=np.uint8)
    y = np.arange(10) % 4
    ds = data.make_tf_dataset(x, batch_size=4, shuffle=True, seed=1, y=y)
    batches = [(xb.numpy(), yb.numpy()) for xb, yb in ds]
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    xs = np.concatenate([b[0] for b in batches])
    assert xs.dtype == np.float32 and 0.0 <= xs.min() and xs.max() <= 1.0
    order = [int(np.flatnonzero((x == np.rint(img * 255).astype(np.uint8)).all(axis=(1, 2, 3)))[0]) for img in xs]
    assert sorted(order) == list(range(10)) and order != list(range(10))
    assert [y[i] for i in order] == np.concatenate([b[1] for b in batches]).tolist()
    again = [xb.numpy() for xb, _ in data.make_tf_dataset(x, batch_size=4, shuffle=True, seed=1, y=y)]
    np.testing.assert_array_equal(np.concatenate(again), xs)
    plain = np.concatenate([b.numpy() for b in data.make_tf_dataset(x, batch_size=3, shuffle=False)])
    np.testing.assert_allclose(plain, x / 255.0, atol=1e-7)


def test_data_face_hands_on_the_conventions_from_their_homes():
    # The conventions live in sat4, the cache in cache; students use qw.data.X (the face).
    import qgan_widgets as qw

    for name in ("CLASS_NAMES", "BANDS", "IMAGE_SHAPE", "SPLITS", "DatasetError"):
        assert getattr(qw.data, name) is getattr(sat4, name), name
    assert qw.data.cache_dir is cache.cache_dir and qw.data.load_dataset is data.load_dataset
    assert not hasattr(data, "BANDS")  # the dataset module does not re-export sat4's names


def test_a_cache_write_error_is_not_blamed_on_the_source(tmp_path, fresh_cache, monkeypatch):
    """Only an OSError about the SAT-4 file itself becomes 'cannot be read'; one about writing the cache
    entry (another file) stays what it is."""
    mat = _mat(tmp_path / "fine.mat")
    real_open_memmap = np.lib.format.open_memmap

    def cache_disk_full(filename, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(filename))

    monkeypatch.setattr(np.lib.format, "open_memmap", cache_disk_full)
    with pytest.raises(PermissionError) as info:
        data.load_sat4(mat, "train")
    assert not isinstance(info.value, DatasetError) and "x.npy" in str(info.value.filename)
    monkeypatch.setattr(np.lib.format, "open_memmap", real_open_memmap)
    assert len(data.load_sat4(mat, "train")[0]) == 6
