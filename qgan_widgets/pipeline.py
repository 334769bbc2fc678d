"""The :class:`Workspace`: data + VAE + feature extractor, prepared once and shared.

Everything a latent GAN run needs besides the generator and the critic::

    ws = Workspace.prepare(latent_dim=4)        # loads data, trains or loads the cached models
    ws.real_latents                             # the GAN's real data: encoded training tiles
    ws.floor                                    # the reconstruction floor, the best FD reachable
    evaluate = ws.evaluator()                   # for WGANGPTrainer(..., evaluator=evaluate)
    scores, samples = evaluate(generator, step)

The VAE and the feature extractor are cached under ``data.cache_dir()`` (``vae/`` and
``features/``), keyed by the data set's fingerprint (source, subset sizes, seed) and their
configuration, so a second ``prepare`` with the same settings loads them in about a second. One
workspace serves any number of generators with its ``latent_dim`` (the dashboard and the sweeps
reuse it) and may be used from a worker thread. Notebooks
``04_training_latent_style_qgan`` and ``05_classical_vs_quantum``.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time

import numpy as np

from qgan_widgets import data
from qgan_widgets.scores import metrics
from qgan_widgets.scores.features import FeatureExtractor
from qgan_widgets.models.vae import TUNED_VAE, VAE, VAEError, train_vae
from qgan_widgets.models.vae_tuning import vae_diagnostics

__all__ = ["Workspace", "WorkspaceError", "FAST_SIZES", "FULL_SIZES", "DEFAULT_VAE_OPTIONS", "FAST_VAE_OPTIONS",
           "AUX_SEED_OFFSET"]

FAST_SIZES = (2_000, 500)
"""(training, evaluation) images in fast mode (``QGAN_FAST=1``): a workspace in ~10-20 s."""
FULL_SIZES = (10_000, 2_000)
"""(training, evaluation) images by default: the default VAE trains in about 3-3.5 minutes on 2 cores."""


class WorkspaceError(ValueError):
    """A workspace cannot be prepared or used as asked (the message says why)."""


DEFAULT_VAE_OPTIONS = dict(TUNED_VAE)
"""The VAE a workspace trains unless ``vae_options`` says otherwise: the tuning study's recommendation
(``results/vae-tuning/report.md``), :data:`qgan_widgets.models.TUNED_VAE`: texture-statistics,
perceptual and class-consistency terms with the canvas decoder, 10 epochs at the full sizes. The plain
squared-error VAE (flat tiles) is ``vae_options={"texture": 0, "perceptual": 0, "consistency": 0,
"decoder": "transpose"}``."""
FAST_VAE_OPTIONS = {**TUNED_VAE, "consistency": 30.0}
"""What a fast-mode workspace (``FAST_SIZES``, 8 epochs) trains unless ``vae_options`` says otherwise: the
tuned recipe with a class-consistency weight of 30. On 2,000 tiles the weight 100 piled one latent
dimension up at the bound (24% of the values beyond +-0.98, measured at 8 and 12 epochs, seed 0) where 30
left none (0%) and kept an accuracy ratio of 0.92 (fast extractor, N = 500)."""
AUX_SEED_OFFSET = 1000
"""The auxiliary classifier behind a VAE's perceptual term is seeded ``seed + 1000``: another network
than the feature extractor (seed ``seed``) whose features score the tiles."""


def _vae_key(fingerprint: str, config: dict, epochs: int, seed: int, aux: dict | None = None) -> str:
    blob = json.dumps({"config": config, "epochs": epochs, "seed": seed, "v": 1, **({"aux": aux} if aux else {})},
                      sort_keys=True)
    return f"{fingerprint}-ld{config['latent_dim']}-{hashlib.sha1(blob.encode()).hexdigest()[:10]}"


class Workspace:
    """Data, a trained VAE and a trained feature extractor, with the real statistics computed once.

    Build it with :meth:`prepare` (or directly from a dataset and trained models). Attributes:

    - ``dataset`` (:class:`qgan_widgets.data.dataset.Dataset`), ``vae``, ``extractor``, ``latent_dim``,
      ``seed``;
    - ``real_latents``: float32 ``(n_train, latent_dim)`` in [-1, 1], the encoded training tiles;
    - ``real_features`` / ``real_feature_stats``: classifier features of the evaluation images
      (the test split) and their (mean, covariance);
    - ``floor``: the reconstruction floor, a :class:`~qgan_widgets.scores.metrics.Score`: FD between VAE
      reconstructions of as many *training* tiles as there are evaluation images and the real
      evaluation images (separate images on both sides, like a generated score, so the floor
      carries the same small-sample bias). It is what a generator that matched the real latents
      exactly would score: the reference for every generated score. It is not a strict bound: a
      generator can land somewhat below it (latents slightly off the real ones can decode to
      tiles the classifier finds closer to real), which means the floor is reached, not that the
      generator beats the VAE;
    - ``vae_report``: :func:`qgan_widgets.models.vae_tuning.vae_diagnostics` on the evaluation images.
    """

    def __init__(self, dataset, vae: VAE, extractor: FeatureExtractor, seed: int = 0,
                 verbose: bool = True):
        self.dataset, self.vae, self.extractor, self.seed = dataset, vae, extractor, int(seed)
        self.latent_dim = vae.latent_dim
        self._lock = threading.Lock()
        self._noise: dict[tuple[int, int, int], np.ndarray] = {}
        x_eval = dataset.x_test
        if len(x_eval) < 2 or len(dataset.x_train) < 2:
            raise WorkspaceError(f"Workspace: {dataset.name} has too few images "
                                 f"({len(dataset.x_train)} train, {len(x_eval)} test); 2 of each at least")
        self.real_latents = vae.encode(dataset.x_train)
        self._real_latent_stats = metrics.feature_stats(self.real_latents)
        self.real_features = extractor.features(x_eval)
        self.real_feature_stats = metrics.feature_stats(self.real_features)
        self.n_eval = len(x_eval)
        self.floor = self.score_images(self.reconstruction_images(), seed=self.seed, name="FD floor")
        self.vae_report = vae_diagnostics(vae, x_eval)
        if verbose:
            print(f"[workspace] reconstruction floor: {self.floor}")
            if self.n_eval < 10 * extractor.feature_dim:
                print(f"[workspace] note: {self.n_eval} evaluation images for {extractor.feature_dim} "
                      f"features: FD is biased upwards at this size; compare scores at equal N, or "
                      f"use KID (kid_images), which is unbiased")
            for w in self.vae_report["warnings"]:
                print(f"[workspace] VAE warning: {w}")

    # -- building ------------------------------------------------------------------------------
    @classmethod
    def prepare(cls, source=None, latent_dim: int = 4, fast: bool | None = None, seed: int = 0,
                vae_epochs: int | None = None, n_train: int | None = None,
                n_test: int | None = None, vae_options: dict | None = None,
                extractor_epochs: int | None = None, cache: bool = True,
                verbose: bool = True) -> "Workspace":
        """Load the data, train or load the cached VAE and feature extractor, encode the latents.

        - ``source``: data source as in :func:`qgan_widgets.data.dataset.load_dataset` (None: real SAT-4 if
          found, else the stand-in, said in one printed line).
        - ``fast``: None follows ``QGAN_FAST``; fast uses ``FAST_SIZES`` (2,000 / 500 images) and
          the VAE's fast epoch count, else ``FULL_SIZES`` (10,000 / 2,000). ``n_train`` /
          ``n_test`` override the sizes (class-balanced subsets drawn with ``seed``).
        - ``latent_dim``, ``vae_options`` (other :class:`~qgan_widgets.models.vae.VAE` arguments, e.g.
          ``beta``, on top of :data:`DEFAULT_VAE_OPTIONS`, or :data:`FAST_VAE_OPTIONS` in fast mode: the tuning
          study's recipe; a VAE with a perceptual or class-consistency term gets an auxiliary classifier seeded
          ``seed + AUX_SEED_OFFSET``, trained and cached like the extractor), ``vae_epochs`` (default 8 fast /
          10), ``extractor_epochs``: the models.
        - ``cache``: load and store the trained models under ``data.cache_dir()``.
        """
        from qgan_widgets import FAST
        from qgan_widgets.models import vae as vae_module

        fast = FAST if fast is None else bool(fast)
        sizes = FAST_SIZES if fast else FULL_SIZES
        n_train = sizes[0] if n_train is None else n_train
        n_test = sizes[1] if n_test is None else n_test
        t0 = time.perf_counter()
        dataset = data.load_dataset(source, n_train=n_train, n_test=n_test, seed=seed,
                                    verbose=verbose)
        epochs = (vae_module.FAST_EPOCHS if fast else vae_module.DEFAULT_EPOCHS) \
            if vae_epochs is None else int(vae_epochs)
        try:
            base = FAST_VAE_OPTIONS if fast else DEFAULT_VAE_OPTIONS
            config = VAE.make_config(latent_dim=latent_dim, seed=seed, **{**base, **(vae_options or {})})
        except TypeError as e:
            raise WorkspaceError(f"Workspace.prepare: bad vae_options {vae_options!r}: {e}") from None
        ext_epochs = extractor_epochs
        if ext_epochs is None:
            from qgan_widgets.scores import features

            ext_epochs = features.FAST_EPOCHS if fast else features.DEFAULT_EPOCHS
        vae = cls._vae(dataset, config, epochs, seed, cache, verbose, ext_epochs)
        extractor = FeatureExtractor.for_dataset(dataset, epochs=ext_epochs, seed=seed,
                                                 cache=cache, verbose=verbose)
        ws = cls(dataset, vae, extractor, seed=seed, verbose=verbose)
        if verbose:
            print(f"[workspace] ready in {time.perf_counter() - t0:.0f} s: {ws.describe()}")
        return ws

    @staticmethod
    def _vae(dataset, config: dict, epochs: int, seed: int, cache: bool, verbose: bool,
             aux_epochs: int | None = None) -> VAE:
        aux = ({"seed": seed + AUX_SEED_OFFSET, "epochs": aux_epochs}
               if config.get("perceptual") or config.get("consistency") else None)
        path = data.cache_dir() / "vae" / _vae_key(dataset.fingerprint, config, epochs, seed, aux)
        if cache and path.is_dir():
            try:
                vae = VAE.load(path)
                if verbose:
                    print(f"[workspace] loaded the VAE from the cache ({path.name})")
                return vae
            except VAEError as e:
                if verbose:
                    print(f"[workspace] cached VAE unusable, training again: {e}")
        vae = VAE(**config)
        if verbose:
            print(f"[workspace] training the VAE (latent_dim {vae.latent_dim}, beta {vae.beta:g}, "
                  f"{epochs} epochs on {len(dataset.x_train):,} images)")
        net = None
        if aux is not None:  # the perceptual term's classifier: not the extractor that scores
            net = FeatureExtractor.for_dataset(dataset, epochs=aux["epochs"], seed=aux["seed"], cache=cache,
                                               verbose=verbose).perceptual_net(logits=True)
        t0 = time.perf_counter()
        train_vae(vae, dataset.x_train, epochs=epochs, seed=seed, verbose=False, perceptual_net=net)
        if verbose and vae.history:
            print(f"[workspace] VAE trained in {time.perf_counter() - t0:.0f} s: validation recon "
                  f"MSE {vae.history['val_recon_mse'][-1]:.5f}")
        if cache:
            try:
                vae.save(path)
            except OSError as e:
                if verbose:
                    print(f"[workspace] could not cache the VAE at {path}: {e}")
        return vae

    def describe(self) -> str:
        """One line: data, models, floor."""
        acc = self.extractor.test_accuracy
        acc = "?" if acc is None else f"{acc:.0%}"
        return (f"{self.dataset.name}{' (stand-in)' if self.dataset.is_standin else ''}, "
                f"{len(self.real_latents):,} real latents (d={self.latent_dim}), "
                f"{self.n_eval:,} evaluation images; extractor: {self.extractor.name}, test "
                f"accuracy {acc}; floor {self.floor.name} {self.floor.value:.4g}")

    def __repr__(self) -> str:
        return f"Workspace({self.describe()})"

    # -- scores --------------------------------------------------------------------------------
    def reconstruction_images(self) -> np.ndarray:
        """The VAE reconstructions (float in [0, 1]) behind the floor: ``n_eval`` training tiles
        picked with the workspace's seed (the same every call)."""
        pick = np.random.default_rng(self.seed).permutation(len(self.dataset.x_train))[:self.n_eval]
        return self.vae.reconstruct(self.dataset.x_train[np.sort(pick)])

    def score_images(self, x, seed: int | None = None, name: str = "FD") -> metrics.Score:
        """FD between classifier features of images ``x`` (uint8, or float in [0, 1]) and those of
        the real evaluation images, as a :class:`~qgan_widgets.scores.metrics.Score`."""
        return self._feature_score(self.extractor.features(x), seed, name)

    def _feature_score(self, feats: np.ndarray, seed: int | None, name: str = "FD") -> metrics.Score:
        """FD of classifier features ``feats`` to the real evaluation images', as a Score."""
        value = metrics.frechet_distance(*metrics.feature_stats(feats), *self.real_feature_stats)
        return metrics.Score(value=value, name=name, n_real=self.n_eval, n_fake=len(feats),
                             feature_dim=self.extractor.feature_dim, seed=seed,
                             extractor=self.extractor.name)

    def classifier_accuracies(self) -> dict:
        """How well the feature classifier labels the evaluation tiles and their VAE reconstructions:
        ``{"real": accuracy, "reconstructed": accuracy, "ratio": reconstructed / real, "n": tiles}``.
        A VAE that keeps what tells the classes apart (colour, texture, roads and roofs) has a ratio
        near 1; a VAE that blurs tiles to their mean colour drops towards chance (0.25). Computed once."""
        with self._lock:
            if getattr(self, "_accuracies", None) is None:
                x, y = self.dataset.x_test, self.dataset.y_test
                real = self.extractor.accuracy(x, y)
                recon = self.extractor.accuracy(self.vae.reconstruct(x), y)
                self._accuracies = {"real": real, "reconstructed": recon,
                                    "ratio": recon / real if real > 0 else float("nan"), "n": int(len(y))}
            return dict(self._accuracies)

    def class_histogram(self, x) -> np.ndarray:
        """Fractions of tiles ``x`` (uint8, or float in [0, 1]) the classifier puts in each class, in
        class order (:data:`qgan_widgets.data.CLASS_NAMES`); the real mix is ``class_histogram`` of
        ``dataset.x_test``. A generator that collapses onto one class shows as one tall bar."""
        labels = self.extractor.predict(x)
        return np.bincount(labels, minlength=len(data.CLASS_NAMES))[:len(data.CLASS_NAMES)] / max(1, len(labels))

    def kid_images(self, x, seed: int = 0, n_blocks: int = 10) -> metrics.Score:
        """KID (mean ± std over blocks) between features of images ``x`` and the real ones.

        Unbiased: prefer it to FD when the sample count is below ~10x the feature dimension."""
        return self._kid_score(self.extractor.features(x), seed, n_blocks)

    def _kid_score(self, feats: np.ndarray, seed: int | None, n_blocks: int = 10,
                   block_size: int | None = None) -> metrics.Score:
        mean, std = metrics.kid(feats, self.real_features, n_blocks=n_blocks, block_size=block_size, seed=seed or 0)
        return metrics.Score(value=mean, std=std, name="KID", n_real=self.n_eval, n_fake=len(feats),
                             feature_dim=self.extractor.feature_dim, seed=seed,
                             extractor=self.extractor.name)

    def score_latents(self, z, seed: int | None = None) -> metrics.Score:
        """FD between latent vectors ``z`` ``(N, latent_dim)`` and the real latents: cheap, for
        live views; it says nothing about how the decoded images look beyond the VAE."""
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise WorkspaceError(f"score_latents: latents must have shape (N, {self.latent_dim}), got {z.shape}")
        value = metrics.frechet_distance(*metrics.feature_stats(z), *self._real_latent_stats)
        return metrics.Score(value=value, name="FD latent", n_real=len(self.real_latents),
                             n_fake=len(z), feature_dim=self.latent_dim, seed=seed,
                             extractor=f"VAE latent space ({self.latent_dim}-d)")

    def decode_to_uint8(self, z) -> np.ndarray:
        """Decode latents ``z`` in [-1, 1] to uint8 tiles ``(N, 28, 28, 4)``."""
        return np.round(self.vae.decode(z) * 255.0).astype(np.uint8)

    # -- evaluation during training ------------------------------------------------------------
    def noise_batch(self, n: int, noise_dim: int, seed: int = 0) -> np.ndarray:
        """The fixed standard-normal noise batch ``(n, noise_dim)`` for ``seed`` (made once)."""
        from qgan_widgets.models.generators import sample_noise

        key = (int(n), int(noise_dim), int(seed))
        with self._lock:
            if key not in self._noise:
                self._noise[key] = sample_noise(key[0], key[1], key[2])
            return self._noise[key]

    def evaluator(self, n_samples: int | None = None, n_grid: int = 16, seed: int = 0, images_from_step: int = 0,
                  kid: bool = False):
        """A function ``evaluate(generator, step) -> (scores, samples)`` for the trainer.

        It runs the generator on a FIXED noise batch of ``n_samples`` (default: as many as there
        are evaluation images, so generated scores and the floor share N) drawn with ``seed``,
        and returns

        - ``scores``: ``{"fd": float, "fd_latent": float, "data": str, "scores": {"fd": Score dict,
          "fd_latent": Score dict}}`` (FD in classifier features of the decoded images, and FD in
          the latent space; NaN when the generator's output is not finite; ``data`` names the
          dataset, e.g. ``"sat4-synthetic (stand-in)"``, for titles);
        - ``samples``: uint8 tiles ``(n_grid, 28, 28, 4)`` decoded from the first ``n_grid`` noise
          vectors, the same every call, so grids show training progress.

        About 0.1-0.5 s at the default sizes, nearly all of it decoding and classifying the tiles.
        ``images_from_step``: before this training step only the latent FD is computed (no ``fd``, no
        samples): a sweep judges image scores only in its last evaluations and skips the rest.
        Works for any generator with this workspace's ``latent_dim``. ``kid=True`` adds ``"kid"`` (KID
        over 10 blocks of at most 500 tiles; its Score carries the blocks' std) wherever ``fd`` is computed.
        """
        n, label = self._evaluation_settings(n_samples, n_grid)

        def evaluate(generator, step=None):
            if getattr(generator, "latent_dim", self.latent_dim) != self.latent_dim:
                raise WorkspaceError(f"evaluator: the generator makes {generator.latent_dim}-d latents "
                                     f"but this workspace's VAE has latent_dim {self.latent_dim}")
            noise = self.noise_batch(n, int(generator.noise_dim), seed)
            z = np.asarray(generator(noise, training=False), dtype=np.float32)
            return self._score_members(z[np.newaxis], n, n_grid, seed, label,
                                       with_images=step is None or step >= images_from_step, kid=kid)[0]

        return evaluate

    def ensemble_evaluator(self, n_samples: int | None = None, n_grid: int = 16, seed: int = 0,
                           images_from_step: int = 0, kid: bool = False):
        """:meth:`evaluator` for an ensemble: ``evaluate(stacked_generator, step) -> [(scores, samples)]``,
        one pair per member, in member order (see :mod:`qgan_widgets.models.stacked`).

        Every member runs on the same fixed noise batch as :meth:`evaluator` gives a single generator,
        and its latents are decoded and classified in the batches a solo run uses, so a member's scores
        are those of the same generator trained alone (its tiles equal to the bit for equal latents).
        """
        n, label = self._evaluation_settings(n_samples, n_grid)

        def evaluate(stacked, step=None):
            if stacked.latent_dim != self.latent_dim:
                raise WorkspaceError(f"ensemble evaluator: the generators make {stacked.latent_dim}-d latents "
                                     f"but this workspace's VAE has latent_dim {self.latent_dim}")
            noise = self.noise_batch(n, int(stacked.noise_dim), seed)
            z = np.asarray(stacked(np.broadcast_to(noise, (stacked.size, *noise.shape))), dtype=np.float32)
            return self._score_members(z, n, n_grid, seed, label,
                                       with_images=step is None or step >= images_from_step, kid=kid)

        return evaluate

    def _evaluation_settings(self, n_samples, n_grid) -> tuple[int, str]:
        n = self.n_eval if n_samples is None else int(n_samples)
        if n < 2 or not 0 <= n_grid <= n:
            raise WorkspaceError(f"evaluator: need n_samples >= 2 and 0 <= n_grid <= n_samples, got "
                                 f"{n} and {n_grid}")
        return n, self.dataset.name + (" (stand-in)" if self.dataset.is_standin else "")

    def _score_members(self, z: np.ndarray, n: int, n_grid: int, seed: int, label: str,
                       with_images: bool = True, kid: bool = False) -> list[tuple[dict, object]]:
        """Scores and sample tiles of each member's latents ``z`` (S, n, latent_dim): the finite members'
        latents decoded and put through the classifier in one evaluation, member by member
        (``with_images=False``: the latent FD only)."""
        nan = float("nan")
        results: list = [({"fd": nan, "fd_latent": nan, "data": label, "scores": {}}, None)] * len(z)
        ok = [s for s in range(len(z)) if z[s].shape == (n, self.latent_dim) and np.all(np.isfinite(z[s]))]
        if not ok:
            return results
        latents = np.clip(z[ok], -1.0, 1.0)
        if with_images:  # member by member: a solo run's batches exactly (same tiles to the bit), and no
            # slower than one call (decoding is compute-bound; on one EPYC thread 2,500 tiles took 1.34-1.40 s
            # in batches of 500, 1.68-2.03 s in the default batches of 1,024)
            tiles = np.stack([self.vae.decode(member) for member in latents])
            feats = np.stack([self.extractor.features(member) for member in tiles])
        for i, s in enumerate(ok):
            fd_latent = self.score_latents(latents[i], seed=seed)
            values, parts, samples = {"fd_latent": fd_latent.value}, {"fd_latent": fd_latent.to_dict()}, None
            if with_images:
                fd = self._feature_score(feats[i], seed)
                values, parts = {"fd": fd.value, **values}, {"fd": fd.to_dict(), **parts}
                if kid:  # blocks of at most 500 tiles: a quarter of the cost of 1,000 at N = 2,000
                    k = self._kid_score(feats[i], seed, block_size=min(500, n // 2))
                    values["kid"], parts["kid"] = k.value, k.to_dict()
                samples = np.round(tiles[i, :n_grid] * 255.0).astype(np.uint8)
            results[s] = ({**values, "data": label, "scores": parts}, samples)
        return results
