# Everything installs into a local virtual environment; each target installs what it needs.
PYTHON ?= python3
VENV ?= .venv
# A CPU build of PyTorch by default; override e.g. TORCH_SPEC="torch==2.14.1" for another build.
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.dicomxray-installed

.PHONY: install test lint demo bench examples clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[augment,fallback,test,dev,index,s3,http,dask]"
	touch $(STAMP)

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/mypy

demo: install
	$(PY) -m dicomxray demo --out demo_out

bench: install
	$(PY) -m pip install -q monai  # an optional peer in the comparison, never a dependency of dicomxray
	$(PY) -m benchmarks.run_all --out bench_out
	$(PY) -m benchmarks.update_readme bench_out

clean:
	rm -rf $(VENV) demo_out bench_out .bench_data
