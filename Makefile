# qgan_widgets: the two commands of the README are `make demo` and `make test`.
# Every target creates .venv with the pinned stack first if it is missing or out of date.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo demo-quick test test-fast lab dashboard info bench sweep-quick strip clean install

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed: $(PYTHON) was not found (set PYTHON=/path/to/python3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)          ## the main job: data -> VAE -> quantum + classical latent GANs -> FD
	$(PY) -m qgan_widgets demo

demo-quick: $(STAMP)
	$(PY) -m qgan_widgets demo --quick

test: $(STAMP)          ## the whole test suite, notebooks and widget tests included
	$(PY) -m pytest

test-fast: $(STAMP)     ## skip the slow integration tests and notebooks
	$(PY) -m pytest -m "not slow and not notebook and not browser"

info: $(STAMP)
	$(PY) -m qgan_widgets info

lab: $(STAMP)           ## JupyterLab on the notebooks
	$(VENV)/bin/jupyter lab notebooks/

dashboard: $(STAMP)     ## the Explorer as a Voila web app on localhost
	JUPYTER_PATH=qgan_widgets/apps/jupyter$${JUPYTER_PATH:+:$$JUPYTER_PATH} $(VENV)/bin/voila \
		notebooks/dashboard.ipynb --no-browser --template=qgan --VoilaExecutor.iopub_timeout=120

classroom: $(STAMP)     ## the Explorer for a class on this machine (see README: warm pool, culling, a cap)
	$(PY) -m qgan_widgets classroom

bench: $(STAMP)
	$(PY) -m qgan_widgets bench generator

sweep-quick: $(STAMP)
	$(PY) -m qgan_widgets sweep --quick --out runs/sweep-quick

strip:                  ## remove outputs from the notebooks before committing
	$(VENV)/bin/jupyter nbconvert --clear-output --inplace notebooks/*.ipynb

clean:
	rm -rf $(VENV) data/cache .pytest_cache
