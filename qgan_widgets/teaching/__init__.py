"""Teaching: the notebooks' helpers and the classroom self-checks.

- :mod:`.notebook`: sizes for ``QGAN_FAST``, the data banner, live training plots, the versions table;
- :mod:`.exercises`: ``check_*`` functions that say whether an answer is right, with a hint when not.
"""
from __future__ import annotations

from qgan_widgets.teaching.notebook import (
    NOTEBOOKS, fast_mode, sized, data_banner, LivePlot, plot_training, show_figure, sequence,
    versions, versions_table, results_dir, committed_table,
)
from qgan_widgets.teaching import exercises

__all__ = [
    "NOTEBOOKS", "fast_mode", "sized", "data_banner", "LivePlot", "plot_training", "show_figure",
    "sequence", "versions", "versions_table", "results_dir", "committed_table", "exercises",
]
