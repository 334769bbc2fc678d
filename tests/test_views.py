"""Band views, image grids and per-class band statistics."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from qgan_widgets.data import dataset as data  # noqa: E402
from qgan_widgets.data import views


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (5, 28, 28, 4), dtype=np.uint8), np.array([0, 1, 2, 3, 1])


def _small_dataset(standin: bool) -> data.Dataset:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (24, 28, 28, 4), dtype=np.uint8)
    y = np.arange(24) % 4
    return data.Dataset(x, y, x[:8], y[:8], name="sat4-synthetic" if standin else "sat4-sample",
                        is_standin=standin)


@pytest.mark.parametrize("name,shape", [("rgb", (28, 28, 3)), ("nir", (28, 28)), ("ndvi", (28, 28)),
                                        ("false_color", (28, 28, 3))])
def test_views_accept_single_or_batched_uint8_or_float(batch, name, shape):
    x, _ = batch
    fn = views.VIEWS[name]
    single, many = fn(x[0]), fn(x)
    assert single.shape == shape and many.shape == (5, *shape)
    assert single.dtype == np.float32 and many.dtype == np.float32
    np.testing.assert_allclose(fn(data.to_float(x)), many, atol=1e-6)  # float input, same view
    low = -1.0 if name == "ndvi" else 0.0
    assert many.min() >= low and many.max() <= 1.0


def test_view_contents():
    tile = np.zeros((28, 28, 4), np.uint8)
    tile[..., 0], tile[..., 1], tile[..., 2], tile[..., 3] = 60, 120, 180, 180
    tile[0, 0] = 0  # all bands dark: NDVI defined as 0
    np.testing.assert_allclose(views.ndvi(tile)[1, 1], (180 - 60) / (180 + 60), rtol=1e-6)
    assert views.ndvi(tile)[0, 0] == 0.0
    np.testing.assert_allclose(views.rgb(tile)[1, 1], np.array([60, 120, 180]) / 255, rtol=1e-6)
    np.testing.assert_allclose(views.false_color(tile)[1, 1], np.array([180, 60, 120]) / 255, rtol=1e-6)
    np.testing.assert_allclose(views.nir(tile)[1, 1], 180 / 255, rtol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        views.rgb(np.zeros((28, 28, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        views.rgb(np.full((28, 28, 4), 2.0))


@pytest.mark.parametrize("view", list(views.VIEWS))
def test_plot_grid_returns_a_figure_with_class_names(batch, view):
    x, y = batch
    fig = views.plot_grid(x, y, view=view, ncols=3, title="five tiles")
    assert isinstance(fig, matplotlib.figure.Figure)
    titles = [ax.get_title() for ax in fig.axes if ax.get_ylabel() != "NDVI"]  # less the NDVI colour bar
    assert titles == ["barren land", "trees", "grassland", "none", "trees"]
    assert fig._suptitle.get_text() == "five tiles"
    assert not any("STAND-IN" in t.get_text() for t in fig.texts)
    fig.canvas.draw()


def test_plot_grid_labels_stand_in_data_and_draws_into_given_axes_or_figure(batch):
    x, y = batch
    fig = views.plot_grid(x, y, standin=True)
    assert any("STAND-IN" in t.get_text() for t in fig.texts)
    own = plt.figure(figsize=(6, 3))
    assert views.plot_grid(x, fig=own) is own and len(own.axes) == 5
    fig2, ax = plt.subplots()
    assert views.plot_grid(x, y, ax=ax, standin=True, view="ndvi") is fig2
    texts = [t.get_text() for t in ax.texts]
    assert "STAND-IN DATA" in texts and "grassland" in texts
    assert views.plot_grid(x[0]).axes  # one tile
    with pytest.raises(ValueError, match="view"):
        views.plot_grid(x, view="infrared")
    with pytest.raises(ValueError, match="labels"):
        views.plot_grid(x, y[:3])


@pytest.mark.parametrize("standin", [True, False])
def test_plot_class_examples(standin):
    ds = _small_dataset(standin)
    fig = views.plot_class_examples(ds, per_class=3, view="false_color")
    assert len(fig.axes) == 12
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert labels == list(data.CLASS_NAMES)
    assert any("STAND-IN" in t.get_text() for t in fig.texts) == standin
    fig.canvas.draw()


def test_band_statistics_matches_a_direct_computation(batch):
    x, y = batch
    df = views.band_statistics(x, y, chunk=2)  # several chunks
    assert list(df.index) == list(data.CLASS_NAMES)
    assert df.loc["trees", "n"] == 2
    a = x[y == 1].astype(np.float64)
    np.testing.assert_allclose(df.loc["trees", ["R", "G", "B", "NIR"]].to_numpy(float), a.mean(axis=(0, 1, 2)))
    np.testing.assert_allclose(df.loc["trees", ["R_std", "G_std", "B_std", "NIR_std"]].to_numpy(float),
                               a.std(axis=(0, 1, 2)))
    np.testing.assert_allclose(df.loc["trees", "NDVI"], views.ndvi(x[y == 1]).astype(np.float64).mean(), rtol=1e-6)
    same = views.band_statistics(data.to_float(x), y)  # float input, reported on the 0-255 scale
    np.testing.assert_allclose(same.to_numpy(float), df.to_numpy(float), rtol=1e-5)
    assert list(views.band_statistics(x[:1], y[:1]).index) == ["barren land"]  # absent classes left out


def test_band_statistics_reproduces_the_real_sample_readme(sat4_sample_path):
    ds = data.load_dataset(sat4_sample_path, verbose=False)
    df = views.band_statistics(np.concatenate([ds.x_train, ds.x_test]), np.concatenate([ds.y_train, ds.y_test]))
    # the figures of the sample's README (R, G, B, NIR rounded, NDVI to 2 decimals)
    readme = {"barren land": (177, 162, 141, 184, 0.02), "trees": (91, 93, 86, 147, 0.24),
              "grassland": (116, 114, 99, 167, 0.19), "none": (124, 124, 116, 146, 0.09)}
    for name, row in readme.items():
        np.testing.assert_allclose(df.loc[name, ["R", "G", "B", "NIR"]].to_numpy(float), row[:4], atol=0.6)
        assert abs(df.loc[name, "NDVI"] - row[4]) <= 0.006
    assert df["n"].tolist() == [23, 22, 15, 40]


def test_grids_take_row_and_column_labels_and_ndvi_has_its_colour_scale():
    """Issue 18: real and reconstructed tiles paired with row labels, traversals with step values,
    NDVI grids with a colour bar."""
    x = np.random.default_rng(0).integers(0, 255, (6, 28, 28, 4), dtype=np.uint8)
    fig = views.plot_grid(x, view="ndvi", ncols=3, row_labels=["real", "reconstructed"],
                          col_labels=["-0.5", "+0.0", "+0.5"])
    texts = {t.get_text() for t in fig.texts}
    assert {"real", "reconstructed", "-0.5", "+0.0", "+0.5"} <= texts
    bars = [a for a in fig.axes if a.get_ylabel() == "NDVI"]
    assert len(bars) == 1  # the colour scale, beside the tiles
    rgb = views.plot_grid(x, view="rgb", ncols=3)
    assert not [a for a in rgb.axes if a.get_ylabel()]  # no colour bar for true colour


def test_a_log_fd_axis_has_plain_tick_labels():
    """Issue 17: a log FD axis read "6x10^1"; its labels are plain numbers."""
    fig, ax = plt.subplots()
    evals = [{"step": s, "fd": v, "fd_latent": v / 40} for s, v in ((10, 2000.0), (20, 600.0), (30, 60.0))]
    views.plot_fd(ax, evals, floor=3.0)
    fig.canvas.draw()
    assert ax.get_yscale() == "log"
    labels = [t.get_text() for t in ax.get_yticklabels(minor=False) + ax.get_yticklabels(minor=True) if t.get_text()]
    assert labels and not any("times" in t or "^" in t or "$" in t for t in labels), labels
    assert any(t in ("10", "100", "1000", "60", "600") for t in labels), labels


def test_a_log_fd_axis_over_one_decade_does_not_pile_its_labels_up():
    """Between 20 and 200 every minor tick was labelled (40, 50, ... 90 overlapping under 100)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    evals = [{"step": s, "fd": v} for s, v in ((10, 190.0), (20, 150.0), (30, 25.0))]
    views.plot_fd(ax, evals, floor=1.0)  # 1 to 190: more than two decades, only 1, 10, 100 labelled
    fig.canvas.draw()
    lo, hi = ax.get_ylim()
    shown = [t.get_text() for t in ax.get_yticklabels(minor=True) if t.get_text() and lo <= t.get_position()[1] <= hi]
    assert not shown, shown
    ax.cla()
    views.plot_fd(ax, [{"step": 1, "fd": 200.0}, {"step": 2, "fd": 9.0}], floor=None)
    fig.canvas.draw()
    lo, hi = ax.get_ylim()
    values = sorted(float(t.get_text()) for t in ax.get_yticklabels(minor=False) + ax.get_yticklabels(minor=True)
                    if t.get_text() and lo <= t.get_position()[1] <= hi)
    assert values and all(b / a >= 1.3 for a, b in zip(values, values[1:])), values  # never 80, 90, 100
