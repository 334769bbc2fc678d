"""A training run's directory: its records, sample grids and checkpoints, and resuming from them.

A run directory (``out_dir`` of :class:`~qgan_widgets.training.trainer.WGANGPTrainer`) holds::

    config.json          train config, generator and critic configs, seed, real-latent fingerprint
    metrics.csv          one row per step (appended as training goes)
    evals.csv            one row per evaluation
    samples_XXXXX.png    sample grids, when the evaluator returns images
    checkpoints/step-XXXXXX/   the last two checkpoints (written atomically)

Files are rewritten through a temporary name and ``os.replace``; a CSV line torn by a kill is
dropped on reading. :class:`RunDirectory` is the trainer's half that writes and restores all this
(a mixin of :class:`~qgan_widgets.training.trainer.WGANGPTrainer`: it uses the trainer's ``out_dir``,
``config``, models, ``history`` and ``evals``); :func:`latest_checkpoint` finds the newest complete
checkpoint. Taught in notebook ``04_training_latent_style_qgan``.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from qgan_widgets.training.config import STEP_KEYS

KEEP_CHECKPOINTS = 2
_FRESH = "start over with resume=False (the demo and dashboard: a new output directory), or delete the directory"


class RunDirectoryError(ValueError):
    """A run directory cannot be resumed (damaged ``config.json``, no readable checkpoint): says
    which directory and what to do."""


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a synced temporary file and ``os.replace`` (no half-written
    file, whatever interrupts it). Also used by the sweep analysis (:mod:`qgan_widgets.study.analysis`)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_csv(path: Path, rows: list[dict], fields: Sequence[str]) -> None:
    """Rewrite a whole CSV atomically."""
    lines = [",".join(fields)]
    lines += [",".join(_fmt_cell(row.get(k)) for k in fields) for row in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")


def _fmt_cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        return repr(float(v))  # shortest round-trip repr: reads back bit-identical
    return str(v)


def _csv_header(path: Path) -> list[str]:
    """The column names of a CSV written by this module ([] if there is none yet)."""
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return next(csv.reader(f), [])


def _read_csv(path: Path) -> tuple[list[str], list[dict]]:
    """Rows of a CSV written by this module; a torn last line (killed mid-write) is dropped."""
    if not path.is_file():
        return [], []
    with open(path, newline="") as f:
        reader = csv.reader(f)
        try:
            fields = next(reader)
        except StopIteration:
            return [], []
        rows = []
        for cells in reader:
            if len(cells) != len(fields):
                continue
            try:
                row = {k: (int(c) if k == "step" else (float(c) if c != "" else math.nan))
                       for k, c in zip(fields, cells)}
            except ValueError:
                continue
            rows.append(row)
    return fields, rows


def latest_checkpoint(out_dir) -> Path | None:
    """The newest complete checkpoint directory of a run directory, or None."""
    root = Path(out_dir) / "checkpoints"
    if not root.is_dir():
        return None
    done = sorted(p for p in root.glob("step-*") if (p / "meta.json").is_file())
    return done[-1] if done else None


def _fingerprint(x: np.ndarray) -> dict:
    return {"n": int(x.shape[0]), "dim": int(x.shape[1]),
            "sha1": hashlib.sha1(np.ascontiguousarray(x, dtype=np.float32).tobytes()).hexdigest()}


def _save_grid(images: np.ndarray, path: Path, title: str) -> None:
    """Save a sample grid PNG drawn by ``views.plot_grid``.

    Drawn on a bare ``matplotlib.figure.Figure``: no pyplot state and no backend switch, so saving
    grids from a notebook or a worker thread never hides the notebook's own figures.
    """
    from matplotlib.figure import Figure

    from qgan_widgets.data import views

    images = np.asarray(images)
    cols = max(1, min(8, len(images)))
    rows = max(1, math.ceil(len(images) / cols))
    fig = views.plot_grid(images, title=title, fig=Figure(figsize=(1.1 * cols + 0.6, 1.1 * rows + 0.7)))
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=80)
    os.replace(tmp, path)


def parameter_count(model) -> int:
    """Trainable parameters of a model (its ``count_parameters()`` when it has one)."""
    if hasattr(model, "count_parameters"):
        return int(model.count_parameters())
    return int(sum(int(np.prod(v.shape)) for v in model.trainable_variables))


class RunDirectory:
    """Writing, checking and restoring the run directory: the trainer's half that touches files.

    A mixin of :class:`~qgan_widgets.training.trainer.WGANGPTrainer`, which sets the attributes used here
    (``out_dir``, ``config``, ``generator``, ``critic``, ``real_latents``, ``history``, ``evals``,
    ``step``, ``resume_enabled``, ``last_scores``, its ``tf.train.Checkpoint`` and its divergence check
    ``_over_limits``).
    """

    def _run_config(self) -> dict:
        gen_cfg = self.generator.config() if hasattr(self.generator, "config") else {
            "class": type(self.generator).__name__}
        crit_cfg = self.critic.config() if hasattr(self.critic, "config") else {
            "class": type(self.critic).__name__}
        return {
            "train": self.config.to_dict(),
            "generator": gen_cfg,
            "critic": crit_cfg,
            "seed": self.config.seed,
            "generator_params": parameter_count(self.generator),
            "critic_params": parameter_count(self.critic),
            "real_latents": _fingerprint(self.real_latents),
        }

    def _prepare_out_dir(self) -> None:
        """Create the run directory, or restore the run it holds (see ``resume``)."""
        out = self.out_dir
        out.mkdir(parents=True, exist_ok=True)
        (out / "checkpoints").mkdir(exist_ok=True)
        new = self._run_config()
        ckpt = latest_checkpoint(out) if self.resume_enabled else None
        if ckpt is not None:
            old = self._read_run_config(out / "config.json")
            self._check_same_run(old, new)
            self._restore_newest_readable()
            new = {**old, "train": {**old["train"], "steps": self.config.steps}}
        else:
            shutil.rmtree(out / "checkpoints", ignore_errors=True)
            (out / "checkpoints").mkdir()
            for name in ("metrics.csv", "evals.csv"):
                (out / name).unlink(missing_ok=True)
            for png in out.glob("samples_*.png"):
                png.unlink()
            _write_csv(out / "metrics.csv", [], STEP_KEYS)
        atomic_write_text(out / "config.json", json.dumps(new, indent=2) + "\n")
        self._prepared = True

    @staticmethod
    def _read_run_config(path: Path) -> dict:
        try:
            old = json.loads(path.read_text())
        except FileNotFoundError:
            raise RunDirectoryError(f"{path.parent} has checkpoints but no config.json, so it cannot be "
                                    f"resumed: {_FRESH}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise RunDirectoryError(f"{path} cannot be read ({type(err).__name__}: {err}), so the run in "
                                    f"{path.parent} cannot be resumed: {_FRESH}") from None
        if not isinstance(old, dict) or not isinstance(old.get("train"), dict):
            raise RunDirectoryError(f"{path} is not a run configuration (no 'train' section), so the run in "
                                    f"{path.parent} cannot be resumed: {_FRESH}")
        return old

    def _check_same_run(self, old: dict, new: dict) -> None:
        def strip(d):  # what must match: the architecture and the training settings
            d = json.loads(json.dumps(d))
            d.get("train", {}).pop("steps", None)
            d.get("train", {}).setdefault("jit_compile", "auto")  # runs from before the setting existed
            for part in ("generator", "critic"):  # initial-weight seeds: the checkpoint overrides them
                d.get(part, {}).pop("seed", None)
            d.pop("real_latents", None)
            return d

        if strip(old) != strip(new):
            diffs = []
            for part in ("train", "generator", "critic"):
                a, b = old.get(part, {}), new.get(part, {})
                for key in sorted(set(a) | set(b)):
                    if key not in ("steps", "seed") and a.get(key) != b.get(key):
                        diffs.append(f"{part}.{key}: {a.get(key)!r} -> {b.get(key)!r}")
            raise ValueError(
                f"{self.out_dir} holds a run with a different configuration ({'; '.join(diffs) or 'other fields'}); "
                f"use another out_dir, or resume=False to start over there")
        if old.get("real_latents") != new.get("real_latents"):
            warnings.warn(f"resuming {self.out_dir} with different real latents than the run started "
                          f"with (was {old.get('real_latents')}); the result is not the same run", stacklevel=3)

    def _restore_from(self, ckpt: Path) -> None:
        self._ckpt.read(str(ckpt / "ckpt")).assert_existing_objects_matched()
        self.step = int(self._step_var.numpy())
        _, rows = _read_csv(self.out_dir / "metrics.csv")
        self.history = [r for r in rows if r["step"] <= self.step]
        _write_csv(self.out_dir / "metrics.csv", self.history, STEP_KEYS)
        fields, rows = _read_csv(self.out_dir / "evals.csv")
        self.evals = [r for r in rows if r["step"] <= self.step]
        if fields:
            _write_csv(self.out_dir / "evals.csv", self.evals, fields)
        self._bad_streak = 0
        for row in reversed(self.history):
            if not self._over_limits(row):
                break
            self._bad_streak += 1
        self._prepared = True

    def _restore_newest_readable(self) -> None:
        """Restore the newest checkpoint; if it cannot be read (damaged files), the one before."""
        done = sorted(p for p in (self.out_dir / "checkpoints").glob("step-*") if (p / "meta.json").is_file())
        for i, ckpt in enumerate(reversed(done)):
            try:
                self._restore_from(ckpt)
                return
            except Exception as err:  # noqa: BLE001 (any unreadable checkpoint)
                self._damaged.add(ckpt.name)  # a retrained step replaces it (save_checkpoint)
                reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
                if i == len(done) - 1:
                    raise RunDirectoryError(
                        f"no checkpoint in {self.out_dir / 'checkpoints'} can be read (the oldest, {ckpt.name}: "
                        f"{reason}), so the run cannot be resumed: {_FRESH}") from None
                warnings.warn(f"checkpoint {ckpt} cannot be read ({reason}); using the one before it", stacklevel=3)

    def restore(self, checkpoint=None) -> int:
        """Load a checkpoint (default: the newest in ``out_dir``) and the records up to it.

        Returns the restored step. Also useful after :class:`TrainingDiverged` to get the last good
        weights back into the models.
        """
        if self.out_dir is None:
            raise ValueError("restore needs the trainer's out_dir")
        ckpt = latest_checkpoint(self.out_dir) if checkpoint is None else Path(checkpoint)
        if ckpt is None:
            raise FileNotFoundError(f"no checkpoint in {self.out_dir / 'checkpoints'}")
        self._restore_from(ckpt)
        return self.step

    def save_checkpoint(self) -> Path | None:
        """Write a checkpoint of the current step atomically and keep the newest two."""
        if self.out_dir is None:
            return None
        root = self.out_dir / "checkpoints"
        root.mkdir(parents=True, exist_ok=True)
        final = root / f"step-{self.step:06d}"
        damaged = final.name in self._damaged
        if (final / "meta.json").is_file() and not damaged:
            return final  # this step is saved already (e.g. by checkpoint_every, or a finished run resumed)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
        try:
            self._ckpt.write(str(tmp / "ckpt"))
            meta = {"step": self.step, "time": time.time(), "history_rows": len(self.history),
                    "evals_rows": len(self.evals)}
            (tmp / "meta.json").write_text(json.dumps(meta))
            if final.exists():  # a damaged checkpoint of the retrained step, or an incomplete leftover
                aside = Path(tempfile.mkdtemp(prefix=".tmp-old-", dir=root))
                os.replace(final, aside / final.name)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._damaged.discard(final.name)
        done = sorted(p for p in root.glob("step-*") if (p / "meta.json").is_file())
        for old in done[:-KEEP_CHECKPOINTS]:
            shutil.rmtree(old, ignore_errors=True)
        for stale in root.glob(".tmp-*"):
            if stale != tmp:
                shutil.rmtree(stale, ignore_errors=True)
        return final

    def _append_metrics(self, row: dict) -> None:
        if self.out_dir is None:
            return
        with open(self.out_dir / "metrics.csv", "a") as f:
            f.write(",".join(_fmt_cell(row.get(k)) for k in STEP_KEYS) + "\n")

    def _append_eval(self, record: dict, samples) -> None:
        if self.out_dir is None:
            return
        path = self.out_dir / "evals.csv"
        fields = _csv_header(path)
        new = [k for k in record if k not in fields]
        if new:  # the first record, or scores that start later (e.g. image FD only in the judged window)
            _, rows = _read_csv(path)
            _write_csv(path, rows + [record], fields + new)
        else:
            with open(path, "a") as f:
                f.write(",".join(_fmt_cell(record.get(k)) for k in fields) + "\n")
        if samples is not None:
            try:
                data = self.last_scores.get("data")  # e.g. "sat4-synthetic (stand-in)", from the evaluator
                kind = getattr(self.generator, "kind", None)  # "quantum" / "classical": say which one this is
                who = f"{kind} generator" if kind in ("quantum", "classical") else "generated"
                _save_grid(samples, self.out_dir / f"samples_{record['step']:05d}.png",
                           f"{who} samples, step {record['step']}" + (f", {data}" if data else ""))
            except Exception as err:  # a plotting problem must not end a training run
                warnings.warn(f"could not save the sample grid: {err}", stacklevel=2)
