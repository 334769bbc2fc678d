"""Scratch benchmark of the statevector backend against TFQ (forward + gradient wrt theta).

    python benchmarks/statevector_probe.py [--sizes 5x2,8x4,10x4,12x4] [--batch 128] [--steps 20]
        [--backends tfq,sv] [--options '{"jit_compile": false}'] [--repeat 1]

Each (backend, size) runs in a fresh subprocess so that the first-step time (build + trace +
compile + first run) is what a new process sees. Prints first step (s), median and best ms/step.
Figures on a shared machine are indicative. The project's benchmark is
``python -m qgan_widgets bench generator``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time
t_import = time.perf_counter()
import numpy as np
from qgan_widgets._tf import tf
from qgan_widgets.quantum.circuits import style_circuit, readout_observables
backend, n, L, batch, steps, options = json.loads(sys.argv[1])
theta = tf.constant(np.random.default_rng(0).uniform(-3, 3, (batch, style_circuit(n, L).num_gates)).astype(np.float32))
t0 = time.perf_counter()
style = style_circuit(n, L)
obs = readout_observables(style.qubits, "z")
if backend == "tfq":
    import tensorflow_quantum as tfq
    layer = tfq.layers.Expectation(differentiator=tfq.differentiators.Adjoint())
    circ = tfq.convert_to_tensor([style.circuit] * batch)
    ops = tfq.convert_to_tensor([obs] * batch)
    names = tf.constant(style.symbol_names)
    f = lambda th: layer(circ, symbol_names=names, symbol_values=th, operators=ops)
else:
    from qgan_widgets.quantum.statevector import StateVectorBackend, flops_per_step
    f = StateVectorBackend(style, obs, **options)

@tf.function
def step(th):
    with tf.GradientTape() as tape:
        tape.watch(th)
        y = f(th)
        loss = tf.reduce_sum(y * y)
    return loss, tape.gradient(loss, th)

step(theta)[1].numpy()
first = time.perf_counter() - t0
ts = []
for _ in range(steps):
    t = time.perf_counter(); step(theta)[1].numpy(); ts.append(time.perf_counter() - t)
row = dict(backend=backend, n=n, L=L, batch=batch, first_s=first, median_ms=1e3 * float(np.median(ts)),
           best_ms=1e3 * float(np.min(ts)))
if backend != "tfq":
    row["gflops"] = flops_per_step(style, batch, len(obs)) / (row["median_ms"] * 1e-3) / 1e9
print("ROW" + json.dumps(row))
"""


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="5x2,8x4,10x4,12x4")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--backends", default="tfq,sv")
    ap.add_argument("--options", default="{}")
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args(argv)
    options = json.loads(a.options)
    for size in a.sizes.split(","):
        n, L = (int(v) for v in size.split("x"))
        for _ in range(a.repeat):
            for backend in a.backends.split(","):
                arg = json.dumps([backend, n, L, a.batch, a.steps, options])
                out = subprocess.run([sys.executable, "-c", CHILD, arg], capture_output=True, text=True)
                rows = [line[3:] for line in out.stdout.splitlines() if line.startswith("ROW")]
                if not rows:
                    print(out.stderr[-3000:])
                    continue
                r = json.loads(rows[0])
                extra = f"  {r['gflops']:.1f} GFLOP/s" if "gflops" in r else ""
                print(f"{backend:4s} {n:2d}x{L}  first {r['first_s']:6.2f} s  median {r['median_ms']:8.2f} ms"
                      f"  best {r['best_ms']:8.2f} ms{extra}  {time.strftime('%H:%M:%S')}", flush=True)


if __name__ == "__main__":
    main()
