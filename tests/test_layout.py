"""The package's layout: wings whose faces are the only re-exports, imports that only point down.

The layer rule itself is import-linter's contract in ``pyproject.toml`` (run here through its
Python API, so ``make test`` enforces it); the other rules are short AST checks.
"""
from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "qgan_widgets"
ROOT = PKG.parent


def _modules():
    for path in sorted(PKG.rglob("*.py")):
        if path.name == "__init__.py" or "__pycache__" in path.parts:
            continue
        yield path


def _imported_names(tree):
    """Names bound by `from qgan_widgets... import X` statements at any depth: {bound name: module}."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("qgan_widgets"):
            for alias in node.names:
                out[alias.asname or alias.name] = node.module
    return out


def _used_names(tree):
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, ast.Attribute):
            base = node
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name):
                used.add(base.id)
    # names in string annotations ("SweepConfig | str") count as used
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) < 200:
            used.update(part.strip(" []()") for part in node.value.replace("|", " ").split())
    return used


def test_import_layers_contract():
    """No upward import between wings (import-linter's layers contract in pyproject.toml)."""
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.fail(f"import-linter is not installed ({lint} missing): `make install` installs the dev extras")
    run = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "KEPT" in run.stdout and "BROKEN" not in run.stdout, run.stdout


def test_layers_contract_fails_on_an_upward_import(tmp_path):
    """The contract is not vacuous: the same layers, applied to a copy with one upward import, break."""
    import shutil

    copy = tmp_path / "qgan_widgets"
    shutil.copytree(PKG, copy, ignore=shutil.ignore_patterns("__pycache__"))
    bad = copy / "data" / "cache.py"
    bad.write_text(bad.read_text() + "\nfrom qgan_widgets.models.critic import Critic  # upward\n")
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    lint = Path(sys.executable).with_name("lint-imports")
    env = {"PYTHONPATH": str(tmp_path), "PATH": str(Path(sys.executable).parent)}
    run = subprocess.run([str(lint), "--no-cache"], cwd=tmp_path, capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode != 0 and "BROKEN" in run.stdout, run.stdout + run.stderr
    assert "qgan_widgets.data.cache -> qgan_widgets.models.critic" in run.stdout


@pytest.mark.parametrize("path", list(_modules()), ids=lambda p: str(p.relative_to(PKG)))
def test_no_module_reexports_another_modules_names(path):
    """Outside a wing's face, every name imported from the package is used by the importing module."""
    tree = ast.parse(path.read_text())
    used = _used_names(tree)
    for node in tree.body:  # an __all__ may list only the module's own names
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            own = {n.id for n in tree.body if isinstance(n, ast.Assign) for n in n.targets if isinstance(n, ast.Name)}
            own |= {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
            listed = {e.value for e in node.value.elts}
            imported = set(_imported_names(tree))
            assert not (listed & imported - own), f"{path.name} lists imported names in __all__"
    unused = sorted(n for n, mod in _imported_names(tree).items() if n not in used and mod != "qgan_widgets._tf")
    assert not unused, f"{path.relative_to(PKG)} imports but never uses (a re-export?): {unused}"


def test_few_modules_at_the_top():
    top = sorted(p.name for p in PKG.glob("*.py"))
    others = [n for n in top if n not in ("__init__.py", "__main__.py", "_tf.py", "pipeline.py")]
    assert len(others) < 7, others
    wings = sorted(p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert wings == sorted(["apps", "data", "models", "quantum", "scores", "study", "teaching", "training",
                            "widgets"])


def test_faces_name_one_home_each():
    """Every name a face hands on is importable, defined in a module of that wing, and in one wing only."""
    import qgan_widgets

    seen = {}
    for wing in qgan_widgets.WINGS:
        face = importlib.import_module(f"qgan_widgets.{wing}")
        for name in getattr(face, "__all__", []):
            obj = getattr(face, name)
            home = getattr(obj, "__module__", None) or getattr(obj, "__name__", "")
            if isinstance(obj, type(qgan_widgets)):
                home = obj.__name__
            if home and home.startswith("qgan_widgets"):
                assert home.startswith(f"qgan_widgets.{wing}"), f"qw.{wing}.{name} lives in {home}"
            assert name not in seen, f"{name} is handed on by qw.{seen[name]} and qw.{wing}"
            seen[name] = wing


def test_wings_load_lazily():
    """`import qgan_widgets` loads no wing (and so no TensorFlow); `qw.data` loads the data wing on use."""
    code = ("import sys, qgan_widgets as qw; assert 'tensorflow' not in sys.modules; "
            "assert 'qgan_widgets.models' not in sys.modules; qw.data.CLASS_NAMES; "
            "assert 'qgan_widgets.data' in sys.modules; print('ok')")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.stdout.strip() == "ok", run.stderr
