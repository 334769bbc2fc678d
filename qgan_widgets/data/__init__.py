"""Data: SAT-4 tiles and the built-in stand-in, loading and caching, band views and image grids.

Bottom wing (with :mod:`qgan_widgets.quantum`); imports nothing else of the package. Taught in
notebook ``01_sat4_data``; ``docs/DATA.md`` says where to get the real files.

- :mod:`.sat4`: the SAT-4 conventions (bands, classes, shapes) and the ``.mat`` / CSV readers;
- :mod:`.cache`: the cache directory and atomic ``.npy`` cache entries;
- :mod:`.standin`: ``sat4-synthetic``, the calibrated stand-in used when no real files are present;
- :mod:`.dataset`: which data to use, loading, :class:`Dataset`, model input;
- :mod:`.views`: RGB / NIR / NDVI / false-colour views, image grids, training-curve plots.
"""
from __future__ import annotations

from qgan_widgets.data.sat4 import (
    BANDS, CLASS_NAMES, IMAGE_SHAPE, SPLITS, DatasetError, convert_mat, convert_csv,
)
from qgan_widgets.data.cache import cache_dir
from qgan_widgets.data.standin import synthetic_sat4
from qgan_widgets.data.dataset import (
    Dataset, DataSource, GET_REAL_DATA, load_dataset, load_sat4, resolve_source, default_data_dir,
    to_float, make_tf_dataset, balanced_subset, class_counts,
)
from qgan_widgets.data.views import (
    VIEWS, NDVI_RANGE, rgb, nir, ndvi, false_color, plot_grid, plot_class_examples, band_statistics,
    plot_losses, plot_fd,
)

__all__ = [
    "BANDS", "CLASS_NAMES", "IMAGE_SHAPE", "SPLITS", "DatasetError", "convert_mat", "convert_csv",
    "cache_dir", "synthetic_sat4", "Dataset", "DataSource", "GET_REAL_DATA", "load_dataset",
    "load_sat4", "resolve_source", "default_data_dir", "to_float", "make_tf_dataset",
    "balanced_subset", "class_counts", "VIEWS", "NDVI_RANGE", "rgb", "nir", "ndvi", "false_color",
    "plot_grid", "plot_class_examples", "band_statistics", "plot_losses", "plot_fd",
]
