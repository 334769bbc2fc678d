"""The notebook sequence: every notebook is stored stripped, has the d2l-style shape, and runs.

Fast checks (always): the eight notebooks of issue 5 exist, are valid nbformat 4 with the
``python3`` kernel spec, carry no outputs, start with one import cell, have exactly one cell tagged
``parameters`` right after it, and end with the versions cell.

Execution (marked ``notebook``; ``make test-fast`` skips it): every ``notebooks/0*.ipynb`` runs
top to bottom with nbclient under ``QGAN_FAST=1``, in a kernel started from *this* interpreter
(whatever the user's kernel specs say), with ``notebooks/`` as the working directory and the test
session's temporary ``QGAN_CACHE_DIR`` (the first notebook that trains the VAE caches it for the
later ones; each notebook also runs alone). A notebook must not leave files in ``notebooks/``.
"""
from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
EXPECTED = (
    "00_welcome", "01_sat4_data", "02_vae_latent_space", "03_style_quantum_generator",
    "04_training_latent_style_qgan", "05_classical_vs_quantum", "06_capacity_scaling", "07_explorer",
)
NOTEBOOKS = sorted(p.name for p in NB_DIR.glob("0*.ipynb"))
NOTEBOOK_TIMEOUT_S = 300


def _read(name: str):
    return nbformat.read(NB_DIR / name, as_version=4)


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_the_sequence_is_complete():
    assert [n.removesuffix(".ipynb") for n in NOTEBOOKS] == list(EXPECTED)


def test_the_map_and_the_readme_list_every_notebook():
    from qgan_widgets.teaching import notebook

    assert [name for name, _, _ in notebook.NOTEBOOKS] == list(EXPECTED)
    assert list(notebook.sequence().index) == list(EXPECTED)
    readme = (NB_DIR / "README.md").read_text()
    for name in EXPECTED:
        assert f"`{name}`" in readme, f"notebooks/README.md does not describe {name}"


def test_versions_table_names_the_stack():
    from qgan_widgets.teaching import notebook

    table = notebook.versions_table()
    for row in ("Python", "TensorFlow", "tf_keras", "TensorFlow Quantum", "Cirq", "qsimcirq", "NumPy",
                "qgan_widgets", "Platform"):
        assert row in table.index
    assert table.loc["Python", "version"].startswith("3.")
    assert "not installed" not in table.loc["TensorFlow Quantum", "version"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_stripped_and_well_formed(name):
    nb = _read(name)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", "kernel spec must be python3"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {i} has outputs: strip them (make strip)"
            assert cell.execution_count is None, f"cell {i} has an execution count: strip it"
        tags = cell.metadata.get("tags", [])
        assert "parameters" not in tags or cell.cell_type == "code", f"cell {i}: parameters cell must be code"
    assert "widgets" not in nb.metadata, "saved widget state: strip it"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_shape(name):
    nb = _read(name)
    code = _code_cells(nb)
    assert len(code) >= 4
    # one import cell, first
    first = code[0].source
    assert re.search(r"^import qgan_widgets as qw$", first, re.M), "the first code cell imports qgan_widgets as qw"
    assert all(line.startswith(("import ", "from ", "#")) or not line.strip() for line in first.splitlines()), \
        "the import cell only imports"
    for cell in code[1:]:
        assert not re.search(r"^import |^from \S+ import ", cell.source, re.M), \
            f"imports belong in the import cell, found one in:\n{cell.source[:200]}"
    # exactly one parameters cell, right after the imports
    tagged = [i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])]
    assert tagged == [1], f"exactly one cell tagged 'parameters', the second code cell; got code cells {tagged}"
    assert "fast_mode()" in code[1].source, "the parameters cell says which mode (qw.notebook.fast_mode())"
    # ends with the versions cell
    last = nb.cells[-1]
    assert last.cell_type == "code" and "versions_table()" in last.source, "the last cell shows the versions table"
    # prose that teaches: a title and more markdown than a token amount
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    prose = sum(len(c.source) for c in nb.cells if c.cell_type == "markdown")
    assert prose > 1500, f"only {prose} characters of prose"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_standin_is_named_where_data_is_used(name):
    nb = _read(name)
    text = "\n".join(c.source for c in nb.cells)
    uses_data = any(k in text for k in ("load_dataset", "Workspace", "Explorer(", "run_sweep"))
    if uses_data:
        assert "stand-in" in text.lower(), "a notebook that uses data must say when it is the stand-in"
        assert "data_banner" in text or "is_standin" in text or "standin" in text


def _this_interpreter_kernel_manager():
    """An AsyncKernelManager class whose kernel is ipykernel on this very interpreter."""
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import AsyncKernelManager

    class ThisInterpreter(AsyncKernelManager):
        @property
        def kernel_spec(self):
            return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                              display_name=f"Python ({sys.executable})", language="python")

    return ThisInterpreter


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.timeout(NOTEBOOK_TIMEOUT_S + 60)
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes(name, monkeypatch):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setenv("QGAN_FAST", "1")
    monkeypatch.setenv("PYTHONWARNINGS", "ignore::DeprecationWarning")
    nb = _read(name)
    before = sorted(p.name for p in NB_DIR.iterdir())
    # nbclient creates (and so shuts down) the kernel itself: one kernel per notebook, none left over
    client = NotebookClient(nb, kernel_name="python3", kernel_manager_class=_this_interpreter_kernel_manager(),
                            timeout=NOTEBOOK_TIMEOUT_S, allow_errors=False,
                            resources={"metadata": {"path": str(NB_DIR)}})
    t0 = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as err:
        pytest.fail(f"{name} failed:\n{str(err)[-4000:]}")
    elapsed = time.perf_counter() - t0
    print(f"{name}: executed in {elapsed:.1f} s with QGAN_FAST=1")
    assert client.km is None or not client.km.has_kernel, "the kernel was not shut down"
    errors = [o for c in _code_cells(nb) for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    # the parameters cell really ran in fast mode
    fast_lines = [o.get("text", "") for o in _code_cells(nb)[1].outputs if o.get("output_type") == "stream"]
    assert any("QGAN_FAST=1" in t for t in fast_lines), "the kernel did not see QGAN_FAST=1"
    assert sorted(p.name for p in NB_DIR.iterdir()) == before, "the notebook left files in notebooks/"
    shown = "".join(o.get("data", {}).get("text/plain", "") for o in nb.cells[-1].outputs)
    assert sys.executable[:40] in shown, "the kernel did not run on this interpreter"  # pandas may cut long paths
    assert os.environ.get("QGAN_CACHE_DIR"), "tests must run with a temporary cache"
