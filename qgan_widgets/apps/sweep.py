"""The ``sweep`` command: run a capacity-scaling sweep on Ray, then print its report.

Command line::

    python -m qgan_widgets sweep --quick --out runs/sweep-quick
    python -m qgan_widgets sweep --config my-sweep.yaml --out DIR [--address ADDR] [--num-cpus N] [--ensemble S]
    python -m qgan_widgets sweep --analyze-only --out DIR

The study itself lives in :mod:`qgan_widgets.study` (taught in notebook ``06_capacity_scaling``).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from qgan_widgets.study.analysis import analyze
from qgan_widgets.study.optimum import ScalingError
from qgan_widgets.study.runner import RayStartError, fmt_time, run_sweep
from qgan_widgets.study.sweep import CONFIG_DIR, PACKAGED, SweepConfig, SweepConfigError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m qgan_widgets sweep", description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--config", help="sweep file (YAML or JSON), or a packaged name: " + ", ".join(PACKAGED))
    src.add_argument("--quick", action="store_true", help="the small packaged grid: 72 trials, about 7 minutes on 2 cores")
    p.add_argument("--out", help="output directory (default runs/sweep-NAME); re-running resumes it")
    p.add_argument("--address", help="connect to this Ray cluster instead of starting one locally")
    p.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all cores)")
    p.add_argument("--max-retries", type=int, help="Ray retries of a failed trial (default: the config's)")
    p.add_argument("--ensemble", type=int, metavar="S",
                   help="train up to S seeds of a grid point together in one program (default: the config's; "
                        "1: each trial alone). Results are the same either way")
    p.add_argument("--analyze-only", action="store_true", help="only re-analyse the results in --out")
    args = p.parse_args(argv)
    try:
        if args.analyze_only:
            if not args.out:
                p.error("--analyze-only needs --out DIR")
            print(analyze(args.out)["report"])
            return 0
        if not (args.config or args.quick):
            p.error("give --config FILE (or a packaged name) or --quick")
        config = SweepConfig.from_file(CONFIG_DIR / PACKAGED["quick"] if args.quick else args.config)
        out = Path(args.out or f"runs/sweep-{config.name}")
        t0 = time.time()
        run_sweep(config, out, address=args.address, num_cpus=args.num_cpus, max_retries=args.max_retries,
                  ensemble=args.ensemble)
        print((out / "report.md").read_text())
        print(f"sweep {config.name!r} finished in {fmt_time(time.time() - t0)}; outputs in {out}")
    except (SweepConfigError, ScalingError) as e:
        print(f"sweep: {e}", file=sys.stderr)
        return 2
    except RayStartError as e:
        print(f"sweep: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
