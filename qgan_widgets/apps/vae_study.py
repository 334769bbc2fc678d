"""``python -m qgan_widgets vae-study``: the VAE tuning study (``results/vae-tuning/``).

The paper's one warning is that careful tuning of the autoencoder is crucial. This command trains
one VAE per configuration of :data:`GRID` (latent size x beta x the loss's texture and perceptual
terms x the decoder) on the workspace's data at the demo's full sizes, measures each with
:func:`qgan_widgets.models.vae_tuning.tuning_study` (reconstruction floor FD, an untrained
generator's FD, the classifier's accuracy on reconstructions against real tiles, texture strength,
KL per dimension, saturation, training time) and writes::

    OUT/table.csv           one row per configuration (first line: which data, which extractor)
    OUT/report.md           the table, the recommended configuration and why (first line: which data)
    OUT/tuning.png          floor FD and accuracy ratio per configuration
    OUT/chosen.json         the recommended row
    OUT/reconstructions.png real tiles per class beside the recommended VAE's reconstructions (RGB, NDVI)

``OUT`` is ``results/vae-tuning`` (committed; notebook ``02_vae_latent_space`` and the README show
it). ``--quick`` runs a 3-configuration grid at the fast sizes (a smoke test, into
``runs/vae-study-quick``). The full grid trained for 57 minutes on 2 cores (the first nine rows 37,
the seven with the class-consistency term 20); ``--append --keep-models DIR`` adds rows to it.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

__all__ = ["GRID", "QUICK_GRID", "run_vae_study", "choose_default", "plot_pairs", "main"]

_PLAIN = {"texture": 0.0, "perceptual": 0.0, "decoder": "transpose"}
_TUNED = {"texture": 30.0, "perceptual": 10.0, "decoder": "canvas"}  # the first recipe (models.TUNED_VAE less consistency)
GRID = (
    # the old default, and the latent size alone: more dimensions do not bring texture back
    {"latent_dim": 4, "beta": 0.1, **_PLAIN},
    {"latent_dim": 8, "beta": 0.1, **_PLAIN},
    {"latent_dim": 16, "beta": 0.1, **_PLAIN},
    # the loss terms one at a time, together, and with the old decoder (8 latent dimensions)
    {"latent_dim": 8, "beta": 0.1, **_TUNED, "perceptual": 0.0},
    {"latent_dim": 8, "beta": 0.1, **_TUNED, "texture": 0.0},
    {"latent_dim": 8, "beta": 0.1, **_TUNED},
    {"latent_dim": 8, "beta": 0.1, **_TUNED, "decoder": "transpose"},
    # the tuned VAE over latent sizes
    {"latent_dim": 4, "beta": 0.1, **_TUNED},
    {"latent_dim": 12, "beta": 0.1, **_TUNED},
    # + the class-consistency term (the ratios above stop at 0.88), at the epochs the demo's budget allows
    {"latent_dim": 4, "beta": 0.1, **_TUNED, "consistency": 30.0, "epochs": 10},
    {"latent_dim": 4, "beta": 0.1, **_TUNED, "consistency": 100.0, "epochs": 10},
    {"latent_dim": 4, "beta": 0.1, **_TUNED, "consistency": 100.0, "epochs": 8},
    {"latent_dim": 8, "beta": 0.1, **_TUNED, "consistency": 100.0, "epochs": 8},
    # the same with the lighter canvas decoder (its 28 x 28 convolution moved to 14 x 14)
    {"latent_dim": 4, "beta": 0.1, **_TUNED, "consistency": 100.0, "decoder": "canvas-lite", "epochs": 10},
    {"latent_dim": 4, "beta": 0.1, **_TUNED, "consistency": 30.0, "decoder": "canvas-lite", "epochs": 10},
    {"latent_dim": 8, "beta": 0.1, **_TUNED, "consistency": 100.0, "decoder": "canvas-lite", "epochs": 10},
)
"""The full study's configurations (VAE arguments)."""
QUICK_GRID = (
    {"latent_dim": 4, "beta": 0.1, **_PLAIN},
    {"latent_dim": 4, "beta": 0.1, **_TUNED},
    {"latent_dim": 8, "beta": 0.1, **_TUNED},
)
"""``--quick``: three configurations at the fast sizes."""
ACCURACY_RATIO_MIN = 0.9
"""A default must let the classifier label reconstructions at least this well, relative to real tiles."""
RATIO_NOISE = 0.02
"""Accuracy ratios closer than this are not told apart (about two standard errors at 2,000 test tiles)."""


def choose_default(table):
    """The recommended row: among configurations whose accuracy ratio reaches :data:`ACCURACY_RATIO_MIN`
    with no collapsed dimension and at most 5% saturated latents, the one with the fewest latent
    dimensions (each latent dimension is a qubit of the generator with readout z, and a larger latent
    space is harder for a small generator to fill), then the highest accuracy ratio (the criterion that
    needs a margin: a ratio moves by about :data:`RATIO_NOISE` between runs, while the qualifying floors
    all lie far below the plain VAE's). If none qualifies, the same order among the configurations whose
    ratio is within :data:`RATIO_NOISE` of the highest. Training time is reported, not ranked: one
    training's time moves by a fifth between runs on a shared machine. Returns (row, reason)."""
    ok = table[(table.accuracy_ratio >= ACCURACY_RATIO_MIN) & (table.collapsed_dims == 0) & (table.saturation <= 0.05)]
    order = dict(by=["latent_dim", "accuracy_ratio"], ascending=[True, False])
    if len(ok) == 0:
        top = table.accuracy_ratio.max()
        near = table[table.accuracy_ratio >= top - RATIO_NOISE].sort_values(**order)
        row = near.iloc[0]
        return row, (f"NO configuration reached an accuracy ratio of {ACCURACY_RATIO_MIN} (the highest is "
                     f"{top:.3f}); among the {len(near)} within {RATIO_NOISE} of it, the fewest latent dimensions, "
                     f"then the highest ratio")
    row = ok.sort_values(**order).iloc[0]
    best = ok.loc[ok.floor_fd.idxmin()]
    more = "" if best["label"] == row["label"] else (
        f"; {best['label']} reaches a lower floor ({best.floor_fd:.3g} against {row.floor_fd:.3g}) with a ratio of "
        f"{best.accuracy_ratio:.3f}")
    return row, (f"of the {len(ok)} configurations with an accuracy ratio >= {ACCURACY_RATIO_MIN}, no collapsed "
                 f"dimension and at most 5% saturation, it has the fewest latent dimensions (qubits), then the "
                 f"highest ratio{more}")


def run_vae_study(out=None, quick: bool = False, source=None, seed: int = 0, grid=None, verbose: bool = True,
                  keep_models=None, append: bool = False, epochs: int | None = None,
                  workspace_options: dict | None = None):
    """Run the study and write its outputs (see the module docstring); returns (table, chosen row).
    ``keep_models``: a directory to save every trained VAE in (one sub-directory per label), and to load
    them from with ``append``: the rows of ``grid`` are added to the table already in ``out`` (rows
    with a label already there are not run again) and the report and figures are drawn anew.
    ``epochs`` (default: the VAE's for the mode; a configuration's own ``epochs`` wins) and
    ``workspace_options`` (``n_train``, ``n_test``, ``extractor_epochs``) are for small test runs."""
    import pandas as pd

    from qgan_widgets import data
    from qgan_widgets.pipeline import AUX_SEED_OFFSET, FAST_SIZES, FULL_SIZES
    from qgan_widgets.models.vae_tuning import config_label, tuning_study
    from qgan_widgets.scores import features
    from qgan_widgets.scores.features import FeatureExtractor

    out = Path(out or ("runs/vae-study-quick" if quick else "results/vae-tuning"))
    out.mkdir(parents=True, exist_ok=True)
    grid = list(grid or (QUICK_GRID if quick else GRID))
    unknown = set(workspace_options or {}) - {"n_train", "n_test", "extractor_epochs"}
    if unknown:
        raise ValueError(f"run_vae_study: workspace_options takes n_train, n_test and extractor_epochs, "
                         f"not {', '.join(sorted(unknown))}")
    opts = {"n_train": (FAST_SIZES if quick else FULL_SIZES)[0], "n_test": (FAST_SIZES if quick else FULL_SIZES)[1],
            "extractor_epochs": features.FAST_EPOCHS if quick else features.DEFAULT_EPOCHS, **(workspace_options or {})}
    ds = data.load_dataset(source, n_train=opts["n_train"], n_test=opts["n_test"], seed=seed, verbose=verbose)
    extractor = FeatureExtractor.for_dataset(ds, epochs=opts["extractor_epochs"], seed=seed, verbose=verbose)
    aux = FeatureExtractor.for_dataset(ds, seed=seed + AUX_SEED_OFFSET, verbose=verbose, epochs=opts["extractor_epochs"])
    from qgan_widgets.models import vae as vae_module

    if epochs is None:
        epochs = vae_module.FAST_EPOCHS if quick else vae_module.DEFAULT_EPOCHS
    models = {}
    keep = Path(keep_models) if keep_models else None

    def on_model(label, vae):
        models[label] = vae
        if keep is not None:  # not committed: to redraw the figures without training again
            vae.save(_model_dir(keep, label))

    old = pd.read_csv(out / "table.csv", comment="#") if append and (out / "table.csv").is_file() else None
    if old is not None:
        if "consistency" not in old.columns:  # tables from before the class-consistency term: weight 0
            old.insert(list(old.columns).index("perceptual") + 1, "consistency", 0.0)
        grid = [g for g in grid if config_label(g) not in set(old["label"])]
    table = tuning_study(ds, grid, extractor, perceptual_net=aux.perceptual_net(logits=True), epochs=epochs, seed=seed,
                         verbose=verbose, on_model=on_model)
    if old is not None:
        table = pd.concat([old, table], ignore_index=True) if len(table) else old
    row, reason = choose_default(table)
    data_line = (f"data: {ds.describe()}{' (STAND-IN, not real SAT-4)' if ds.is_standin else ''}; "
                 f"extractor: {extractor.name}, test accuracy {extractor.test_accuracy:.1%}; seed {seed}")
    csv_tmp = out / ".table.csv.tmp"
    with open(csv_tmp, "w") as f:
        f.write(f"# {data_line}\n")
        table.to_csv(f, index=False, float_format="%.6g")
    os.replace(csv_tmp, out / "table.csv")
    _plot(out / "tuning.png", table, row, ds)
    chosen = models.get(row["label"])
    if chosen is None:  # from an earlier run: saved with keep_models
        from qgan_widgets.models.vae import VAE

        chosen = VAE.load(_model_dir(Path(keep_models), row["label"]))
    _plot_reconstructions(out / "reconstructions.png", ds, row, chosen)
    report = _report(table, row, reason, data_line, quick)
    (out / "report.md").write_text(report)
    (out / "chosen.json").write_text(json.dumps({k: (v.item() if hasattr(v, "item") else v)
                                                 for k, v in row.items()}, indent=1) + "\n")
    if verbose:
        print(report)
    return table, row


def _model_dir(keep: Path, label: str) -> Path:
    """Where ``keep_models`` holds the VAE of configuration ``label``."""
    return keep / label.replace(" ", "_")


def _plot(path: Path, table, row, ds) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.2))
    ax1, ax2 = fig.subplots(1, 2)
    y = np.arange(len(table))
    colors = ["#c0392b" if label == row["label"] else "#5d6d7e" for label in table["label"]]
    ax1.barh(y, table["floor_fd"], color=colors)
    ax1.set_yticks(y, table["label"], fontsize=7)
    ax1.invert_yaxis()
    ax1.set_xscale("log")
    ax1.set_xlabel(f"reconstruction floor FD (N = {int(table['n_eval'].iloc[0])}, lower is better)")
    ax2.barh(y, table["accuracy_ratio"], color=colors)
    ax2.axvline(ACCURACY_RATIO_MIN, color="k", ls=":", lw=1)
    ax2.set_yticks(y, [])
    ax2.invert_yaxis()
    ax2.set_xlim(0, 1.1)
    ax2.set_xlabel("classifier accuracy on reconstructions / on real tiles")
    title = "VAE tuning study (red: the recommended configuration)"
    if ds.is_standin:
        title += " - STAND-IN DATA (sat4-synthetic)"
    fig.suptitle(title, fontsize=10, color="#c0392b" if ds.is_standin else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def _plot_reconstructions(path: Path, ds, row, vae) -> None:
    """Four real test tiles per class beside the chosen configuration's reconstructions."""
    from qgan_widgets.data import CLASS_NAMES

    pick = np.concatenate([np.flatnonzero(ds.y_test == c)[:4] for c in range(len(CLASS_NAMES))])
    real = ds.x_test[pick]
    recon = np.round(vae.reconstruct(real) * 255.0).astype(np.uint8)
    plot_pairs(path, real, recon, [CLASS_NAMES[c] for c in ds.y_test[pick]], ds.is_standin,
               f"real test tiles and their reconstructions ({row['label']})")


def plot_pairs(path: Path, real, recon, labels, standin: bool, title: str) -> None:
    """Real tiles above their reconstructions, in RGB and in NDVI (with its colour scale)."""
    from matplotlib.figure import Figure

    from qgan_widgets.data import views

    rows = [("real\nRGB", real, "rgb"), ("reconstructed\nRGB", recon, "rgb"),
            ("real\nNDVI", real, "ndvi"), ("reconstructed\nNDVI", recon, "ndvi")]
    n = len(real)
    fig = Figure(figsize=(0.8 * n + 2.2, 4.4))
    axes = fig.subplots(len(rows), n, squeeze=False)
    for r, (label, images, view) in enumerate(rows):
        shown = views.VIEWS[view](images)
        kw = views.NDVI_STYLE if view == "ndvi" else {}
        for c in range(n):
            axes[r, c].imshow(shown[c], interpolation="nearest", **kw)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            if r == 0:
                axes[r, c].set_title(labels[c], fontsize=6)
        axes[r, 0].set_ylabel(label, fontsize=7)
    if standin:
        title += "\nSTAND-IN DATA (sat4-synthetic), not real SAT-4"
    fig.suptitle(title, fontsize=9, color="#c0392b" if standin else "black")
    fig.subplots_adjust(left=0.07, right=0.93, bottom=0.02, top=0.84, wspace=0.05, hspace=0.08)
    views.add_colorbar(fig, (0.945, 0.05, 0.012, 0.38), views.NDVI_STYLE, "NDVI")
    fig.savefig(path, dpi=100)


def _report(table, row, reason: str, data_line: str, quick: bool) -> str:
    epochs = table["epochs"].unique()
    epochs = f"{int(epochs[0])} epochs" if len(epochs) == 1 else "the epochs of its `epochs` column"
    cols = ["label", "floor_fd", "untrained_fd", "accuracy_reconstructed", "accuracy_ratio", "texture_ratio",
            "kl_min", "collapsed_dims", "saturation", "train_seconds"]
    lines = [f"<!-- {data_line} -->", "# VAE tuning study" + (" (quick grid)" if quick else ""), "",
             f"{data_line}.", "",
             f"Each VAE trained {epochs} on {int(table['n_train'].iloc[0]):,} tiles; "
             f"scores on {int(table['n_eval'].iloc[0]):,} test tiles (FD in the classifier's features, N per side as "
             f"given; the classifier labels {table['accuracy_real'].iloc[0]:.1%} of the real test tiles right). "
             f"Training took {table['train_seconds'].sum() / 60:.0f} min in all on this machine (scoring each VAE "
             f"adds a little).", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in table.iterrows():
        cells = [r["label"]] + [f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c in cols[1:]]
        if r["label"] == row["label"]:
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"**Recommended: {row['label']}** ({reason}).", "",
              "Judge the pictures too (reconstructions.png): the `transpose` rows score well and paint a periodic "
              "waffle; the `canvas` decoder's texture is irregular.", "", _default_line(row), ""]
    return "\n".join(lines) + "\n"


def _default_line(row) -> str:
    """Whether the toolkit's workspaces train the recommended configuration, said from the code."""
    from qgan_widgets.models import vae as vae_module
    from qgan_widgets.pipeline import DEFAULT_VAE_OPTIONS

    default = {"latent_dim": 4, "beta": 0.1, **DEFAULT_VAE_OPTIONS, "epochs": vae_module.DEFAULT_EPOCHS}
    differ = [k for k, v in default.items() if k in row.index and row[k] != v]
    if not differ:
        return ("It is the toolkit's default: workspaces (the demo, notebooks, dashboard and sweeps) train it "
                "(`qgan_widgets.pipeline.DEFAULT_VAE_OPTIONS`, `qgan_widgets.models.TUNED_VAE`, 4 latent dimensions, "
                f"{vae_module.DEFAULT_EPOCHS} epochs at the full sizes).")
    return (f"The toolkit's default workspace VAE differs from it in {', '.join(differ)} "
            f"(`qgan_widgets.pipeline.DEFAULT_VAE_OPTIONS`: {DEFAULT_VAE_OPTIONS}, {vae_module.DEFAULT_EPOCHS} epochs).")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qgan_widgets vae-study", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 configurations at the fast sizes (a smoke test)")
    parser.add_argument("--out", default=None, help="output directory (default results/vae-tuning, "
                                                    "runs/vae-study-quick with --quick)")
    parser.add_argument("--data", default=None, help="SAT-4 data path (default: real SAT-4 if found, else the stand-in)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-models", default=None, metavar="DIR", help="also save every trained VAE here")
    parser.add_argument("--append", action="store_true",
                        help="add only the configurations not yet in OUT/table.csv (needs --keep-models: the "
                             "earlier models are loaded from there to draw the figures)")
    args = parser.parse_args(argv)
    if args.append and not args.keep_models:
        parser.error("--append needs --keep-models DIR (where the earlier run kept its models)")
    run_vae_study(out=args.out, quick=args.quick, source=args.data, seed=args.seed, keep_models=args.keep_models,
                  append=args.append)
    return 0
