"""Apps: what ``python -m qgan_widgets`` runs (``demo``, ``bench``, ``info``; ``sweep`` lives in
:mod:`qgan_widgets.study.runner`).

- :mod:`.demo`: the main job: VAE, quantum and classical latent GANs, FD scores, pictures;
- :mod:`.bench`: benchmarks that print figures;
- :mod:`.info`: the stack check;
- :mod:`.vae_study`: the VAE tuning study (``vae-study``).
"""
from __future__ import annotations

from qgan_widgets.apps.demo import run_demo
from qgan_widgets.apps.bench import run_generator_bench
from qgan_widgets.apps.info import check_versions

__all__ = [
    "run_demo", "run_generator_bench", "check_versions",
]
