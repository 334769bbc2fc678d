"""The VAE: bounded latents, training, save/load, diagnostics (collapse, saturation), beta sweep."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from qgan_widgets.data import dataset as data
from qgan_widgets.models.files import atomic_directory
from qgan_widgets.models import VAE, VAEError, train_vae
from qgan_widgets.models import beta_sweep, vae_diagnostics


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    """Stand-in tiles (uint8): 800 to train on, 200 held out."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QGAN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "qgan-cache"))
        ds = data.load_dataset(n_train=800, n_test=200, seed=0, verbose=False)
    return ds.x_train, ds.x_test


@pytest.fixture(scope="module")
def trained(tiles):
    vae = VAE(latent_dim=4, seed=0)
    history = train_vae(vae, tiles[0], epochs=4, seed=0, verbose=False)
    return vae, history


def test_encode_decode_shapes_ranges_and_determinism(trained, tiles):
    vae, _ = trained
    x = tiles[1][:50]
    z = vae.encode(x)
    assert z.shape == (50, 4) and z.dtype == np.float32
    assert np.all(np.abs(z) <= 1.0)
    np.testing.assert_array_equal(z, vae.encode(x))  # deterministic
    np.testing.assert_allclose(vae.encode(data.to_float(x), batch_size=7), z, atol=1e-6)  # batched, float
    assert vae.encode(x[0]).shape == (1, 4)
    mu, logvar = vae.posterior(x)
    np.testing.assert_allclose(np.tanh(mu), z, atol=1e-6)  # the latent is tanh of the mean
    img = vae.decode(z)
    assert img.shape == (50, 28, 28, 4) and img.dtype == np.float32
    assert img.min() >= 0.0 and img.max() <= 1.0
    corners = vae.decode(np.array([[1, -1, 1, -1], [-1, -1, -1, -1]], np.float32))
    assert np.all(np.isfinite(corners))
    np.testing.assert_allclose(vae.reconstruct(x), img, atol=1e-6)


def test_bad_inputs_are_named(trained):
    vae, _ = trained
    with pytest.raises(VAEError, match=r"shape \(N, 4\)"):
        vae.decode(np.zeros((3, 5)))
    with pytest.raises(VAEError, match=r"\[-1, 1\]"):
        vae.decode(np.full((2, 4), 1.5))
    with pytest.raises(VAEError, match="NaN"):
        vae.decode(np.full((2, 4), np.nan))
    with pytest.raises(VAEError, match="28, 28, 4"):
        vae.encode(np.zeros((2, 28, 28, 3), np.uint8))
    with pytest.raises(VAEError, match="latent_dim"):
        VAE(latent_dim=0)
    with pytest.raises(VAEError, match="beta"):
        VAE(beta=-1.0)


def test_training_learns_and_records_history(trained, tiles):
    vae, h = trained
    assert set(h) == {"epoch", "beta", "loss", "recon_mse", "kl", "val_recon_mse", "val_kl", "seconds"}
    assert len(h["loss"]) == 4 and h["epoch"] == [1, 2, 3, 4]
    assert h["recon_mse"][-1] < h["recon_mse"][0]
    assert all(math.isfinite(v) for v in h["val_recon_mse"])
    assert vae.trained_epochs == 4 and vae.history["loss"] == h["loss"]
    # better than predicting the mean tile
    x = data.to_float(tiles[1])
    baseline = float(np.mean((x - x.mean(axis=0)) ** 2))
    assert np.mean((vae.reconstruct(tiles[1]) - x) ** 2) < baseline


def test_training_is_seeded(tiles):
    runs = []
    for _ in range(2):
        vae = VAE(latent_dim=2, base_filters=4, hidden=16, seed=3)
        train_vae(vae, tiles[0][:200], epochs=1, seed=5, validation=None, verbose=False)
        runs.append(vae.encode(tiles[1][:20]))
    np.testing.assert_allclose(runs[0], runs[1], atol=1e-5)


def test_beta_annealing_and_callable_schedule(tiles):
    vae = VAE(latent_dim=2, base_filters=4, hidden=16, beta=0.4)
    seen = []
    h = train_vae(vae, tiles[0][:64], epochs=4, anneal_epochs=4, validation=None, verbose=False,
                  progress=lambda epoch, logs: seen.append(epoch))
    assert h["beta"] == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert seen == [0, 1, 2, 3]
    assert all(math.isnan(v) for v in h["val_recon_mse"])
    h = train_vae(vae, tiles[0][:64], epochs=2, beta=lambda e: 2.0 * e, validation=None, verbose=False)
    assert h["beta"] == [0.0, 2.0]
    with pytest.raises(VAEError, match="validation"):
        train_vae(vae, tiles[0][:64], epochs=1, validation=1.5, verbose=False)


def test_save_load_round_trip(trained, tiles, tmp_path):
    vae, _ = trained
    path = vae.save(tmp_path / "vae")
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "decoder.weights.h5", "encoder.weights.h5"]
    meta = json.loads((path / "config.json").read_text())
    assert meta["config"] == vae.config() and meta["trained_epochs"] == 4
    loaded = VAE.load(path)
    assert loaded.config() == vae.config() and loaded.trained_epochs == 4
    np.testing.assert_array_equal(loaded.encode(tiles[1][:30]), vae.encode(tiles[1][:30]))
    z = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(loaded.decode(z), vae.decode(z))
    vae.save(path)  # overwriting works and leaves no temporary directories
    assert [p.name for p in tmp_path.iterdir()] == ["vae"]


def test_failed_save_keeps_the_old_model(trained, tmp_path):
    vae, _ = trained
    path = vae.save(tmp_path / "vae")
    before = (path / "config.json").read_text()
    with pytest.raises(RuntimeError):
        with atomic_directory(path) as tmp:
            (tmp / "config.json").write_text("half")
            raise RuntimeError("interrupted")
    assert (path / "config.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["vae"]


def test_load_errors_name_the_problem(trained, tmp_path):
    vae, _ = trained
    with pytest.raises(VAEError, match="no saved model"):
        VAE.load(tmp_path / "missing")
    path = vae.save(tmp_path / "vae")
    (path / "decoder.weights.h5").unlink()
    with pytest.raises(VAEError, match="decoder.weights.h5 is missing"):
        VAE.load(path)
    (path / "config.json").write_text("{not json")
    with pytest.raises(VAEError, match="unreadable"):
        VAE.load(path)
    other = VAE(latent_dim=3, base_filters=4, hidden=8).save(tmp_path / "other")
    cfg = json.loads((other / "config.json").read_text())
    cfg["config"]["latent_dim"] = 5
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(VAEError, match="do not fit"):
        VAE.load(other)


def test_diagnostics_on_a_trained_vae(trained, tiles):
    vae, _ = trained
    d = vae_diagnostics(vae, tiles[1])
    assert d["n_images"] == 200 and len(d["kl_per_dim"]) == 4 and len(d["saturation_per_dim"]) == 4
    assert 0 < d["recon_mse"] < d["pixel_variance"]
    assert 0 <= d["saturation"] <= 1
    assert isinstance(d["warnings"], list)
    json.dumps(d)


def test_diagnostics_flag_posterior_collapse(tiles):
    vae = VAE(latent_dim=4, beta=200.0, seed=1)
    train_vae(vae, tiles[0], epochs=3, seed=1, validation=None, verbose=False)
    d = vae_diagnostics(vae, tiles[1])
    assert len(d["collapsed_dims"]) >= 3
    assert min(d["kl_per_dim"]) < 0.02
    assert any("posterior collapse" in w for w in d["warnings"])


def test_diagnostics_flag_saturation_and_poor_reconstruction(tiles):
    vae = VAE(latent_dim=4, seed=2)  # untrained: poor reconstructions
    mu_layer = vae.encoder.get_layer("mu")
    kernel, bias = mu_layer.get_weights()
    mu_layer.set_weights([kernel * 0.0, bias + 5.0])  # every mean at 5: tanh(5) > 0.98
    d = vae_diagnostics(vae, tiles[1][:50])
    assert d["saturation"] == 1.0
    assert any("bound" in w for w in d["warnings"])
    assert any("reconstructions are poor" in w for w in d["warnings"])


def test_texture_vaes_are_judged_on_block_means(tiles):
    """A texture VAE paints texture of the right kind, not in the same place: its reconstructions are
    judged on 7 x 7 block means. Reconstructions that keep the block means and move the texture pass
    there and fail on pixels."""
    from qgan_widgets.models import vae_tuning

    x = tiles[1][:40].astype(np.float32) / 255.0
    blocks = vae_tuning._block_means(x)
    assert blocks.shape == (40, 4, 4, 4)
    np.testing.assert_allclose(blocks[0, 0, 0], x[0, :7, :7].mean(axis=(0, 1)), rtol=1e-6)
    moved = np.flip(x.reshape(40, 4, 7, 4, 7, 4), axis=(2, 4)).reshape(x.shape)  # texture mirrored in each block
    assert np.allclose(vae_tuning._block_means(moved), blocks, atol=1e-6)

    class Stub(VAE):  # reconstructs each tile with its texture mirrored inside each block
        def decode(self, z, batch_size=1024):
            return moved[:len(z)]

    for texture, judged in ((0.0, "of the pixel variance"), (5.0, None)):
        stub = Stub(latent_dim=2, base_filters=4, texture=texture)
        d = vae_diagnostics(stub, x)
        assert d["explained_variance_blocks"] > 0.99 > d["explained_variance"]
        poor = [w for w in d["warnings"] if "reconstructions are poor" in w]
        assert (judged in poor[0]) if judged else not poor, poor


class _FakeExtractor:
    """Duck-typed extractor: FD on per-band means (enough to exercise the floor column)."""

    def score(self, real, fake, seed=None):
        from qgan_widgets.scores import metrics

        f = lambda x: data.to_float(x).mean(axis=(1, 2)).astype(np.float64)  # noqa: E731
        return metrics.Score(metrics.fd_from_samples(f(real), f(fake)), "FD", len(real), len(fake), 4,
                             seed, "band means")

    name = "band means (4-d)"

    def accuracy(self, x, y):  # "class" = brightness quartile: enough to exercise the accuracy columns
        b = data.to_float(x).mean(axis=(1, 2, 3))
        return float(np.mean(np.digitize(b, [0.35, 0.45, 0.55]) == np.asarray(y)))


def test_beta_sweep_table(tiles):
    df = beta_sweep(tiles[0][:300], betas=(0.1, 50.0), latent_dims=(2,), epochs=2,
                    extractor=_FakeExtractor(), base_filters=4, verbose=False)
    assert list(df["beta"]) == [0.1, 50.0] and list(df["latent_dim"]) == [2, 2]
    for col in ("recon_mse", "explained_variance", "floor_fd", "kl_mean", "kl_min", "kl_max",
                "collapsed_dims", "saturation", "warnings", "train_seconds"):
        assert col in df.columns
    assert df["floor_fd"].notna().all() and (df["floor_fd"] >= 0).all()
    assert df.loc[1, "kl_mean"] < df.loc[0, "kl_mean"]  # a heavy KL weight squeezes the posterior


def test_loss_options_are_checked_and_kept_in_the_config():
    vae = VAE(latent_dim=2, base_filters=4, texture=3.0, perceptual=0.5, decoder="upsample", seed=0)
    assert vae.config()["texture"] == 3.0 and vae.config()["perceptual"] == 0.5
    assert vae.config()["decoder"] == "upsample" and VAE(**vae.config()).config() == vae.config()
    assert vae.config()["consistency"] == 0.0 and VAE(latent_dim=2, consistency=5).config()["consistency"] == 5.0
    for bad, match in (({"texture": -1.0}, "texture must be"), ({"perceptual": float("nan")}, "perceptual must be"),
                       ({"consistency": -2}, "consistency must be"), ({"consistency": True}, "consistency must be"),
                       ({"decoder": "pixelshuffle"}, "decoder must be one of transpose, upsample")):
        with pytest.raises(VAEError, match=match):
            VAE(latent_dim=2, **bad)


@pytest.mark.parametrize("decoder", ["transpose", "upsample", "canvas", "canvas-lite"])
def test_every_decoder_decodes_and_round_trips(decoder, tmp_path):
    from qgan_widgets.models.vae import DECODERS

    assert decoder in DECODERS
    vae = VAE(latent_dim=3, base_filters=4, decoder=decoder, seed=1)
    z = np.random.default_rng(0).uniform(-1, 1, (5, 3)).astype(np.float32)
    x = vae.decode(z)
    assert x.shape == (5, 28, 28, 4) and 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_array_equal(vae.decode(z), x)  # the canvas crop is a function of z: deterministic
    np.testing.assert_allclose(VAE.load(vae.save(tmp_path / decoder)).decode(z), x, atol=1e-6)


def test_texture_statistics_see_texture_and_not_its_phase():
    from qgan_widgets.models.vae import texture_statistics

    rng = np.random.default_rng(0)
    flat = np.full((1, 28, 28, 4), 0.5, np.float32)
    noisy = np.clip(flat + rng.normal(0, 0.1, flat.shape), 0, 1).astype(np.float32)
    shifted = np.roll(noisy, 3, axis=2)  # the same texture, moved
    stats = [np.asarray(texture_statistics(v)) for v in (flat, noisy, shifted)]
    assert stats[0].shape == (1, 4 * 4 * 12 + 2 * 2 * 8 + 4 * 4 * 3)
    assert stats[0].max() < 0.01 and stats[1].mean() > 0.05
    assert np.abs(stats[1] - stats[2]).mean() < 0.2 * np.abs(stats[1] - stats[0]).mean()


def test_texture_and_perceptual_terms_train(tiles):
    """The texture term gives reconstructions texture a plain VAE blurs away; a perceptual term needs
    its network, named in the error."""
    from qgan_widgets.models.vae_tuning import within_tile_sd

    x = tiles[0][:400]
    plain = VAE(latent_dim=4, base_filters=8, seed=0)
    train_vae(plain, x, epochs=3, validation=None, seed=0, verbose=False)
    textured = VAE(latent_dim=4, base_filters=8, texture=30.0, decoder="upsample", seed=0)
    train_vae(textured, x, epochs=3, validation=None, seed=0, verbose=False)
    sd_real = within_tile_sd(tiles[1])
    assert within_tile_sd(textured.reconstruct(tiles[1])) > 1.5 * within_tile_sd(plain.reconstruct(tiles[1]))
    assert within_tile_sd(textured.reconstruct(tiles[1])) < 1.5 * sd_real
    with pytest.raises(VAEError, match="needs perceptual_net="):
        train_vae(VAE(latent_dim=2, base_filters=4, perceptual=1.0), x[:50], epochs=1, verbose=False)
    calls = []

    def net(images):
        calls.append(images.shape)
        return images[:, ::4, ::4, :]

    p = VAE(latent_dim=2, base_filters=4, perceptual=1.0, seed=0)
    history = train_vae(p, x[:64], epochs=1, batch_size=32, validation=None, seed=0, verbose=False, perceptual_net=net)
    assert calls and math.isfinite(history["loss"][0])


def test_class_consistency_term_keeps_what_the_classifier_sees(tiles):
    """The class-consistency term (KL between a frozen classifier's class probabilities on a tile and on
    its reconstruction) makes reconstructions keep what that classifier looks at, here the texture a
    plain VAE blurs away; it needs logits, and says so."""
    from qgan_widgets._tf import tf

    def net(images):  # a two-class "classifier" that looks at texture: "textured" grows with the spread
        sd = tf.reduce_mean(tf.math.reduce_std(images, axis=[1, 2]), axis=1, keepdims=True)
        return images[:, ::7, ::7, :], tf.concat([60.0 * sd - 3.0, tf.zeros_like(sd)], axis=1)

    def probabilities(x):
        return tf.nn.softmax(net(tf.constant(x))[1]).numpy()

    x, x_test = tiles[0][:400], tiles[1].astype(np.float32) / 255.0
    p_real, kl, gap = probabilities(x_test), {}, {}
    for weight in (0.0, 300.0):
        vae = VAE(latent_dim=4, base_filters=8, consistency=weight, decoder="canvas", seed=0)
        train_vae(vae, x, epochs=3, validation=None, seed=0, verbose=False, perceptual_net=net)
        p_rec = probabilities(vae.reconstruct(x_test))
        kl[weight] = float(np.mean(np.sum(p_real * (np.log(p_real) - np.log(p_rec)), axis=1)))
        gap[weight] = abs(float(p_real[:, 0].mean() - p_rec[:, 0].mean()))
    # measured: KL 0.33 -> 0.20, share labelled "textured" 0.66 real, 0.41 plain, 0.62 with the term
    assert kl[300.0] < 0.75 * kl[0.0] and gap[300.0] < 0.5 * gap[0.0], (kl, gap)
    with pytest.raises(VAEError, match="returns no logits"):
        train_vae(VAE(latent_dim=2, base_filters=4, consistency=1.0), x[:50], epochs=1, verbose=False,
                  perceptual_net=lambda images: images[:, ::4, ::4, :])
    with pytest.raises(VAEError, match="class-consistency term"):
        train_vae(VAE(latent_dim=2, base_filters=4, consistency=1.0), x[:50], epochs=1, verbose=False)


def test_tuning_study_rows(tiles):
    from qgan_widgets.models.vae_tuning import TUNING_COLUMNS, tuning_study

    class Data:
        x_train, x_test = tiles[0][:300], tiles[1][:80]
        y_test = np.arange(80) % 4

    ext = _FakeExtractor()
    df = tuning_study(Data, [{"latent_dim": 2, "beta": 0.1, "base_filters": 4},
                             {"latent_dim": 3, "beta": 0.1, "base_filters": 4, "texture": 10.0, "label": "tex"}],
                      ext, epochs=1, verbose=False)
    assert tuple(df.columns) == TUNING_COLUMNS and list(df["label"])[1] == "tex"
    assert list(df["latent_dim"]) == [2, 3] and (df["floor_fd"] >= 0).all() and (df["untrained_fd"] >= 0).all()
    assert (df["accuracy_real"] == ext.accuracy(Data.x_test, Data.y_test)).all()
    assert np.allclose(df["accuracy_ratio"], df["accuracy_reconstructed"] / df["accuracy_real"])
    assert (df["texture_ratio"] > 0).all() and (df["n_eval"] == 80).all() and (df["epochs"] == 1).all()


@pytest.mark.slow
def test_vae_study_command_writes_its_outputs(tmp_path, monkeypatch):
    from qgan_widgets.apps import vae_study

    monkeypatch.setenv("QGAN_CACHE_DIR", str(tmp_path / "cache"))
    grid = [{"latent_dim": 2, "beta": 0.1, "base_filters": 4},
            {"latent_dim": 2, "beta": 0.1, "base_filters": 4, "texture": 30.0, "perceptual": 10.0, "decoder": "canvas"}]
    opts = dict(n_train=300, n_test=80, extractor_epochs=1)
    out, keep = tmp_path / "study", tmp_path / "models"
    table, row = vae_study.run_vae_study(out=out, quick=True, grid=grid, epochs=1, workspace_options=opts,
                                         keep_models=keep, verbose=False)
    assert len(table) == 2 and row["label"] in set(table["label"])
    for name in ("table.csv", "report.md", "tuning.png", "reconstructions.png", "chosen.json"):
        assert (out / name).stat().st_size > 100, name
    first = (out / "table.csv").read_text().splitlines()[0]
    assert first.startswith("# data: sat4-synthetic") and "STAND-IN" in first
    assert (out / "report.md").read_text().startswith("<!-- data: sat4-synthetic")
    assert "**Recommended: " in (out / "report.md").read_text()
    # appending a row runs only the new configuration and redraws from the saved models
    more = grid + [{"latent_dim": 3, "beta": 0.1, "base_filters": 4, "epochs": 1}]
    table2, _ = vae_study.run_vae_study(out=out, quick=True, grid=more, epochs=1, workspace_options=opts,
                                        keep_models=keep, append=True, verbose=False)
    assert list(table2["label"])[:2] == list(table["label"]) and len(table2) == 3
    assert list(table2["label"])[2].endswith(" e1")


def test_choose_default_prefers_fewer_qubits_among_good_ones():
    import pandas as pd

    from qgan_widgets.apps.vae_study import choose_default

    t = pd.DataFrame({"label": ["a", "b", "c", "d", "e"], "latent_dim": [4, 8, 4, 16, 4],
                      "floor_fd": [3.0, 1.0, 2.0, 0.5, 2.5], "accuracy_ratio": [0.95, 0.97, 0.5, 0.99, 0.93],
                      "collapsed_dims": [0, 0, 0, 2, 0], "saturation": [0.01, 0.01, 0.0, 0.0, 0.0]})
    row, reason = choose_default(t)
    assert row["label"] == "a" and "b reaches a lower floor" in reason  # 4 qubits, then the highest ratio
    assert choose_default(t.assign(saturation=[0.2, 0.01, 0.0, 0.0, 0.0]))[0]["label"] == "e"  # a saturates
    row, reason = choose_default(t.assign(accuracy_ratio=[0.5, 0.6, 0.4, 0.7, 0.3], collapsed_dims=0))
    assert row["label"] == "d" and "NO configuration reached" in reason
    row, _ = choose_default(t.assign(accuracy_ratio=[0.5, 0.89, 0.4, 0.88, 0.3]))  # 0.88 and 0.89: within the noise
    assert row["label"] == "b"  # fewer qubits than d
