"""Where a sweep trial's time goes, piece by piece, one by one and in an ensemble (issue 16).

    QGAN_FAST=1 python benchmarks/ensemble_probe.py [--sizes 1,5] [--rounds 5] [--calls 10]

On one TensorFlow thread (as a sweep's Ray task), with the quick sweep's settings, critic width 32 and a
4-qubit x 2-layer generator, it prints the median time of:

- a training step of the solo trainer (``WGANGPTrainer``) and of ensembles of S members (``EnsembleTrainer``),
  with each step's outputs fetched as the trainers' loops fetch them;
- the stacked generator's forward on the S x 320 circuits of a step's critic updates;
- decoding and classifying one member's 500 evaluation tiles (a judged evaluation: five per trial).

The pieces are timed side by side in rounds (each round ``--calls`` calls of every piece in turn): the median
of the round medians, and their range. The programs are warm (as in a sweep's long-lived worker).
``python -m qgan_widgets bench sweep`` is the project's benchmark; this says what its columns are made of.
Figures on a shared machine are indicative: run it twice.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

GENERATOR = {"kind": "quantum", "num_qubits": 4, "num_layers": 2, "entangler": "cry-ring", "readout": "z",
             "backend": "statevector"}
CRITIC = {"width": 32, "depth": 2}


def interleaved(pieces: dict, rounds: int, calls: int) -> dict:
    """name -> (median ms, lowest and highest round median) of each piece, timed side by side: every round
    times ``calls`` calls of every piece in turn (after two untimed calls each), so a machine's slow spell
    falls on all pieces alike."""
    for f in pieces.values():
        f()
        f()
    per_round = {name: [] for name in pieces}
    for _ in range(rounds):
        for name, f in pieces.items():
            times = []
            for _ in range(calls):
                t = time.perf_counter()
                f()
                times.append(time.perf_counter() - t)
            per_round[name].append(1e3 * float(np.median(times)))
    return {name: (float(np.median(v)), min(v), max(v)) for name, v in per_round.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,5", help="ensemble sizes (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default %(default)s)")
    parser.add_argument("--calls", type=int, default=10, help="timed calls of each piece per round (default %(default)s)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    from qgan_widgets.study.runner import limit_threads

    limit_threads(1)
    from qgan_widgets._tf import tf
    from qgan_widgets.study.sweep import SweepConfig
    from qgan_widgets.training import EnsembleTrainer, TrainConfig, WGANGPTrainer
    from qgan_widgets.training.trainer import build_models, workspace_or_prepare

    base = SweepConfig.from_file("quick")
    ws = workspace_or_prepare(None, {**base.workspace, "latent_dim": 4}, 4)
    cfg = TrainConfig.from_dict(base.train)
    pieces, members = {}, {}
    g, c, _, _ = build_models(GENERATOR, CRITIC, 0)
    solo = WGANGPTrainer(g, c, ws.real_latents, cfg)
    pieces["solo trainer: a training step"] = lambda: [float(v) for v in solo._train_step().values()]
    for size in sizes:
        gens, crits, _, _ = zip(*(build_models(GENERATOR, CRITIC, s) for s in range(size)))
        ens = EnsembleTrainer(gens, crits, ws.real_latents, cfg, list(range(size)))
        name = f"ensemble S={size}: a training step"
        pieces[name] = lambda ens=ens: [v.numpy() for v in ens._train_step().values()]
        members[name] = size
        noise = tf.random.normal([size, cfg.n_critic * cfg.batch_size, ens.noise_dim], seed=1)
        forward = tf.function(lambda x, ens=ens: ens.G(x, training=True))
        pieces[f"ensemble S={size}: generator forward, {size * cfg.n_critic * cfg.batch_size} circuits"] = (
            lambda forward=forward, noise=noise: forward(noise))
    z = np.random.default_rng(0).uniform(-1, 1, (cfg.eval_samples, 4)).astype(np.float32)
    tiles = ws.vae.decode(z)
    pieces[f"decode {cfg.eval_samples} tiles (a member's judged evaluation)"] = lambda: ws.vae.decode(z)
    pieces[f"classify {cfg.eval_samples} tiles (features for the FD)"] = lambda: ws.extractor.features(tiles)
    results = interleaved(pieces, args.rounds, args.calls)
    rows = []
    for name, (ms, lo, hi) in results.items():
        rows.append((name, ms, lo, hi))
        if name in members:
            k = members[name]
            rows.append((name + ", per member", ms / k, lo / k, hi / k))
    width = max(len(row[0]) for row in rows)
    print(f"{'':<{width}}  {'median':>8}    round medians")
    for name, ms, lo, hi in rows:
        print(f"{name:<{width}}  {ms:8.2f} ms ({lo:.2f}-{hi:.2f})")


if __name__ == "__main__":
    main()
