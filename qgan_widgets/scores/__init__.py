"""Scores: Frechet distances, KID, stability, and the feature extractors they are measured in.

Every score is a :class:`Score` with N, feature dimension, seed and extractor. Taught in notebook
``04_training_latent_style_qgan``.

- :mod:`.metrics`: Frechet distance (float64, guarded square roots), KID, stability judgement;
- :mod:`.features`: the SAT-4 classifier whose penultimate layer gives the features;
- :mod:`.inception`: optional Inception FID on the RGB bands from local InceptionV3 weights.
"""
from __future__ import annotations

from qgan_widgets.scores.metrics import (
    Score, MetricError, frechet_distance, fd_from_samples, feature_stats, kid, judge_stability,
)
from qgan_widgets.scores.features import FeatureExtractor, FeatureExtractorError
from qgan_widgets.scores.inception import InceptionFeatures, InceptionError, find_weights

__all__ = [
    "Score", "MetricError", "frechet_distance", "fd_from_samples", "feature_stats", "kid",
    "judge_stability", "FeatureExtractor", "FeatureExtractorError", "InceptionFeatures",
    "InceptionError", "find_weights",
]
