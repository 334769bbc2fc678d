"""Command line: ``python -m qgan_widgets COMMAND [options]`` (also installed as ``qgan-widgets``).

Each command lives in the module named after its concept; this file only dispatches, importing
the module (and so TensorFlow) only when its command runs.
"""
from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "info": ("qgan_widgets.apps.info", "check the installed stack and say which SAT-4 data would be used"),
    "demo": ("qgan_widgets.apps.demo", "the main job: VAE, quantum and classical latent GANs, FD scores"),
    "bench": ("qgan_widgets.apps.bench", "benchmarks (e.g. `bench generator`): figures, not tests"),
    "sweep": ("qgan_widgets.apps.sweep", "the capacity-scaling study on Ray"),
    "vae-study": ("qgan_widgets.apps.vae_study", "the VAE tuning study behind the default latent space"),
    "classroom": ("qgan_widgets.apps.classroom", "serve the Explorer to a class (Voila: warm pool, culling, a cap)"),
}
BATCH = ("demo", "bench", "sweep", "vae-study")
"""Commands that run as batch jobs: they keep freed memory for reuse (:mod:`qgan_widgets._allocator`)."""


def _usage() -> str:
    lines = ["usage: python -m qgan_widgets COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<9} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "`python -m qgan_widgets COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"qgan_widgets: unknown command {name!r}.\n\n{_usage()}", file=sys.stderr)
        return 2
    if name in BATCH:
        from qgan_widgets._allocator import keep_freed_memory

        keep_freed_memory()
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
