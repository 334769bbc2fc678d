"""The Explorer's figures, drawn on plain matplotlib ``Figure`` objects (no pyplot state), so a
background thread can render them and the notebook's inline backend never shows them twice.

Each ``draw_*`` function redraws one figure from the state's records; :func:`to_png` turns it into
PNG bytes for an ``ipywidgets.Image``. The sample grid is a numpy mosaic encoded directly
(:func:`sample_mosaic`, :func:`image_png`): a few milliseconds instead of a figure with 16 axes.
"""
from __future__ import annotations

import functools
import io
import math

import numpy as np
from matplotlib.figure import Figure

from qgan_widgets.data import views

__all__ = ["new_figure", "to_png", "draw_losses", "draw_fd", "pair_png", "draw_placeholder", "sample_mosaic", "image_png",
           "samples_caption", "circuit_html", "counts_html"]

DPI = 80
_MARGINS = dict(left=0.12, right=0.97, bottom=0.15, top=0.9)


def new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=DPI)


def to_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def draw_placeholder(fig: Figure, title: str, text: str) -> None:
    fig.clear()
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(title, fontsize=10)
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=9, color="#666", wrap=True,
            transform=ax.transAxes)


def draw_losses(fig: Figure, history: list[dict]) -> None:
    """Critic loss, generator loss and the critic's Wasserstein estimate per step."""
    if not history:
        draw_placeholder(fig, "losses", "press Train: the losses appear here step by step")
        return
    fig.clear()
    views.plot_losses(fig.add_subplot(), history)
    fig.subplots_adjust(**_MARGINS)


def draw_fd(fig: Figure, evals: list[dict], floor: float = math.nan, overlays=()) -> None:
    """Frechet distances at each evaluation with the reconstruction floor (``views.plot_fd``), and the
    image FD curves of earlier runs, ``overlays`` = ``[(label, [(step, fd), ...]), ...]``, as thin lines."""
    overlays = [(label, curve) for label, curve in overlays if curve]
    if not evals and not overlays:
        draw_placeholder(fig, "Frechet distance", "press Train: FD is measured every few steps")
        return
    fig.clear()
    ax = fig.add_subplot()
    views.plot_fd(ax, evals, floor)
    for i, (label, curve) in enumerate(overlays):
        steps, fds = zip(*curve)
        ax.plot(steps, fds, "-", lw=1.0, alpha=0.75, color=f"C{(i + 2) % 10}", label=label)
    if overlays:
        ax.legend(fontsize=6, loc="best")
    fig.subplots_adjust(**_MARGINS)


def pair_png(first: dict, second: dict, view: str = "rgb") -> bytes:
    """Two runs' last sample grids side by side (run records of :mod:`qgan_widgets.widgets.compare`),
    each titled with its run and the step it was drawn at."""
    fig = new_figure(9.0, 3.0)
    for i, record in enumerate((first, second)):
        ax = fig.add_subplot(1, 2, i + 1)
        ax.set_axis_off()
        title = f"{record['label']}, step {record['sample_step']}"
        if record.get("samples") is None:
            ax.text(0.5, 0.5, "no samples yet", ha="center", va="center", fontsize=9, color="#666")
        else:
            ax.imshow(sample_mosaic(record["samples"], view, ncols=4, scale=2), interpolation="nearest")
        ax.set_title(title, fontsize=8)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.9, wspace=0.05)
    return to_png(fig)


def sample_mosaic(samples, view: str = "rgb", ncols: int = 8, scale: int = 3, gap: int = 2) -> np.ndarray:
    """The sample tiles as one RGB uint8 mosaic (``view`` ``"rgb"`` or ``"ndvi"``, NDVI in the
    ``RdYlGn`` colour map over ``views.NDVI_RANGE``), each tile enlarged ``scale`` times."""
    from matplotlib import colormaps

    a = np.asarray(samples)
    if a.ndim == 3:
        a = a[None]
    if view == "rgb":
        img = views.rgb(a)
    elif view == "ndvi":
        low, high = views.NDVI_RANGE
        img = colormaps["RdYlGn"]((views.ndvi(a) - low) / (high - low))[..., :3]
    else:
        raise ValueError(f"view must be 'rgb' or 'ndvi', got {view!r}")
    img = np.repeat(np.repeat(img, scale, axis=1), scale, axis=2)
    n, h, w = img.shape[:3]
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    canvas = np.ones((nrows * (h + gap) - gap, ncols * (w + gap) - gap, 3), dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, ncols)
        canvas[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = img[i]
    return np.round(np.clip(canvas, 0, 1) * 255).astype(np.uint8)


def image_png(image: np.ndarray) -> bytes:
    """PNG bytes of an RGB uint8 image (no figure: fast)."""
    from matplotlib.image import imsave

    buf = io.BytesIO()
    imsave(buf, image, format="png")
    return buf.getvalue()


def samples_caption(step: int, view: str, standin: bool, stale: bool = False) -> str:
    name = {"rgb": "true colour (R, G, B)", "ndvi": "NDVI = (NIR - R) / (NIR + R), red bare to green "
                                                    "vegetated"}.get(view, view)
    badge = ("" if not standin else
             " <span style='background:#c0392b;color:white;border-radius:4px;padding:1px 6px;font-size:11px'>"
             "STAND-IN DATA, not real SAT-4</span>")
    if step < 0:
        return f"<div style='font-size:12px;color:#555'>generated samples: {name}{badge}</div>"
    whose = "the previous run's samples (a new run is being prepared)" if stale else "generated samples"
    return (f"<div style='font-size:12px;color:#555'>{whose} at step {step}, decoded from a fixed "
            f"noise batch: {name}{badge}</div>")


SVG_MAX_GATES = 600
"""Larger circuits are shown as Cirq's text diagram. Every circuit the Explorer offers (12 qubits x 8
layers: 492 gates, drawn in about 0.3 s) is drawn as a scrollable SVG."""


def _count(n: int, noun: str) -> str:
    """``"1 qubit"``, ``"3 qubits"``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


@functools.lru_cache(maxsize=64)
def _quantum_html(num_qubits: int, num_layers: int, entangler: str) -> str:
    import html

    from qgan_widgets.quantum import circuits

    style = circuits.style_circuit(num_qubits, num_layers, entangler)
    caption = (f"style circuit: {_count(style.num_qubits, 'qubit')} x {_count(style.num_layers, 'layer')}, entangler "
               f"{html.escape(style.entangler)}, {style.num_gates} parameterised gates; every angle is "
               "w<sub>k</sub> &middot; &xi;<sub>j</sub> + b<sub>k</sub>")
    box = 'style="overflow:auto;max-height:340px;max-width:100%;background:white"'
    if style.num_gates <= SVG_MAX_GATES:
        body = f'<div class="qgan-circuit-svg" {box}>{circuits.to_svg(style)}</div>'
    else:
        body = (f'<div class="qgan-circuit-text" {box}><pre style="font-size:10px;line-height:1.15;white-space:pre;overflow-wrap:normal;word-break:normal">'
                f'{html.escape(circuits.to_text(style))}</pre></div>')
    return f'<div style="font-size:12px;color:#444">{caption}</div>{body}'


def circuit_html(config: dict) -> str:
    """The generator as HTML: the style circuit as SVG (text diagram above :data:`SVG_MAX_GATES`
    gates), or the classical MLP's layers, in a box that scrolls (a 12-qubit circuit is wider than the
    page). Cached per shape."""
    import html

    if config["kind"] == "quantum":
        return _quantum_html(config["num_qubits"], config["num_layers"], config["entangler"])
    from qgan_widgets.widgets.state import latent_dim_of

    d, h = latent_dim_of(config), config["hidden_width"]
    layers = [f"noise {d}", f"Dense {h} (leaky ReLU)", f"Dense {h} (leaky ReLU)", f"Dense {d} (tanh) = latent"]
    boxes = "".join(f'<span style="display:inline-block;border:1px solid #888;border-radius:4px;padding:4px 8px;'
                    f'margin:2px;background:#f4f6f8">{html.escape(t)}</span>' +
                    ("" if i == len(layers) - 1 else " &rarr; ") for i, t in enumerate(layers))
    return (f'<div style="font-size:12px;color:#444">classical generator: a multilayer perceptron</div>'
            f'<div style="padding:8px 0">{boxes}</div>')


def counts_html(config: dict, gen_params: int, critic_params: int) -> str:
    """Generator and critic parameter counts side by side."""
    from qgan_widgets.widgets.state import latent_dim_of

    d = latent_dim_of(config)
    if config["kind"] == "quantum":
        detail = (f"quantum: {_count(config['num_qubits'], 'qubit')} x {_count(config['num_layers'], 'layer')}, "
                  f"{config['entangler']}")
    else:
        detail = f"classical MLP: 2 hidden layers of {config['hidden_width']}"
    ratio = critic_params / gen_params if gen_params else math.nan
    critic_detail = f"width {config['critic_width']}, depth {config['critic_depth']}"

    def box(title, count, text):
        return (f'<div style="flex:1;border:1px solid #ccc;border-radius:6px;padding:6px 10px;margin-right:8px">'
                f'<div style="font-size:12px;color:#555">{title}</div>'
                f'<div style="font-size:22px;font-weight:bold">{count:,}</div>'
                f'<div style="font-size:11px;color:#666">{text}</div></div>')

    return (f'<div style="display:flex;align-items:stretch">'
            f'{box("generator parameters", gen_params, detail)}'
            f'{box("critic parameters", critic_params, critic_detail)}'
            f'</div><div style="font-size:11px;color:#666;margin-top:2px">latent dimension {d}; the critic '
            f'has {ratio:.3g} times as many parameters as the generator</div>')
