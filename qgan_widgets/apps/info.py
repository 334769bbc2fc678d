"""``python -m qgan_widgets info``: check the installed stack and say what the toolkit would use.

Prints Python, TensorFlow, tf_keras, TensorFlow Quantum, Cirq, qsimcirq and NumPy versions, the
Keras mode, CPU cores and which SAT-4 data would be used. Exits 1 with a message naming the bad
package and the fix when the stack is wrong (the most common complaint in TFQ's issue threads is
an import error from mismatched TF / TFQ / Cirq versions). Taught in notebook ``00_welcome``.
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import platform
import sys

from packaging.specifiers import SpecifierSet
from packaging.version import Version

# The pins that install and work together on Python 3.11. pyproject.toml and environment.yml
# carry the same ones (tests/test_packaging.py checks the three agree).
PINS = {
    "tensorflow": "==2.18.1",
    "tf-keras": "==2.18.0",
    "tensorflow-quantum": "==0.7.6",
    "cirq-core": "==1.5.0",
    "cirq-google": "==1.5.0",
    "qsimcirq": "==0.22.1",
    "numpy": ">=2.0,<2.1",
    "sympy": ">=1.14,<1.15",
}
PYTHON = ">=3.11,<3.12"
FIX = "Reinstall the pinned stack: `make install` (or `pip install -e .`) in a fresh Python 3.11 venv."


def check_versions() -> tuple[dict[str, str], list[str]]:
    """Installed versions of the pinned packages and a list of problems (empty when all is well)."""
    versions, problems = {}, []
    py = platform.python_version()
    versions["python"] = py
    if Version(py) not in SpecifierSet(PYTHON):
        problems.append(f"Python {py} is not supported: qgan_widgets needs Python {PYTHON} (TFQ 0.7.6 wheels).")
    for name, spec in PINS.items():
        try:
            got = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = "missing"
            problems.append(f"{name} is not installed (needs {name}{spec}). {FIX}")
            continue
        versions[name] = got
        if Version(got) not in SpecifierSet(spec):
            problems.append(f"{name} {got} is installed but qgan_widgets needs {name}{spec}. {FIX}")
    try:
        cirq_meta = md.version("cirq")
        problems.append(
            f"the `cirq` metapackage {cirq_meta} is installed; it pulls Cirq versions TFQ cannot use. "
            "Run `pip uninstall cirq` and keep cirq-core/cirq-google==1.5.0."
        )
    except md.PackageNotFoundError:
        pass
    return versions, problems


def check_runtime() -> tuple[dict[str, str], list[str]]:
    """Import TensorFlow and TFQ through the Keras guard and run one tiny expectation."""
    facts, problems = {}, []
    try:
        from qgan_widgets._tf import keras, tf

        facts["keras"] = f"Keras 2 (tf_keras {keras.__version__}); tf.keras is {tf.keras.__name__.split('.')[0]}"
    except Exception as exc:  # noqa: BLE001 - report any import failure in plain words
        problems.append(f"TensorFlow / Keras could not be set up: {exc}")
        return facts, problems
    try:
        import cirq
        import sympy
        import tensorflow_quantum as tfq

        q = cirq.LineQubit(0)
        theta = sympy.Symbol("theta")
        layer = tfq.layers.Expectation()
        value = layer(
            tfq.convert_to_tensor([cirq.Circuit(cirq.ry(theta).on(q))]),
            symbol_names=[theta],
            symbol_values=tf.constant([[0.0]]),
            operators=tfq.convert_to_tensor([[cirq.Z(q)]]),
        )
        if abs(float(value.numpy()[0, 0]) - 1.0) > 1e-5:
            problems.append(f"TensorFlow Quantum returned <Z> = {float(value.numpy()[0, 0])} for |0>, expected 1.")
        facts["tfq check"] = "ok (qsim C++ expectation of <Z> on |0> = 1)"
    except Exception as exc:  # noqa: BLE001
        problems.append(f"tensorflow-quantum does not work with this TensorFlow: {exc}. {FIX}")
    return facts, problems


def data_choice() -> str:
    try:
        from qgan_widgets.data.dataset import resolve_source

        return resolve_source().describe()
    except Exception as exc:  # noqa: BLE001 - a bad data path is reported, not fatal for info
        return f"could not resolve the data source: {exc}"


def inception_choice() -> str:
    """Which InceptionV3 weights the optional Inception FID would use (never downloaded)."""
    try:
        from qgan_widgets.scores.inception import ENV_VAR, find_weights

        path = find_weights()
    except Exception as exc:  # noqa: BLE001 - reported, not fatal for info
        return f"unusable: {exc}"
    return str(path) if path else f"none (optional: ${ENV_VAR} or data/inception/*.h5)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qgan_widgets info", description=__doc__.splitlines()[0])
    parser.add_argument("--no-runtime", action="store_true", help="check versions only, import nothing heavy")
    args = parser.parse_args(argv)
    versions, problems = check_versions()
    rows = [(name, ver) for name, ver in versions.items()]
    if not args.no_runtime and not problems:
        facts, runtime_problems = check_runtime()
        rows += list(facts.items())
        problems += runtime_problems
    rows += [("cpu cores", str(os.cpu_count())), ("QGAN_FAST", os.environ.get("QGAN_FAST", "0"))]
    rows.append(("SAT-4 data", data_choice()))
    rows.append(("Inception weights", inception_choice()))
    width = max(len(k) for k, _ in rows)
    print("qgan_widgets environment")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    if problems:
        print("\nProblems:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print("\nAll checks passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
