# Everything installs into local virtual environments; each target installs what it needs.
PYTHON ?= python3
VENV ?= .venv
# The wheel is tested in an environment of its own, from outside the checkout.
WHEEL_VENV ?= .venv-wheel
# A CPU build of PyTorch by default; override e.g. TORCH_SPEC="torch==2.14.1" for another build.
TORCH_SPEC ?= torch==2.13.0
# The extras the tests exercise (each one's tests skip cleanly without it).
TEST_EXTRAS ?= augment,fallback,test,index,s3,http,dicomweb,dask
PY := $(VENV)/bin/python
WPY := $(WHEEL_VENV)/bin/python
STAMP := $(VENV)/.dicomxray-installed

.PHONY: install test dev-test lint docs wheel demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[$(TEST_EXTRAS),dev,docs]"
	touch $(STAMP)

# The test command: build the wheel, install it (not the checkout) into a fresh environment, and run the test
# suite, `dicomxray doctor` and `import dicomxray` from a directory outside the checkout.
test: wheel
	rm -rf $(WHEEL_VENV)
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WPY) -m pip install -q --upgrade pip
	$(WPY) -m pip install -q "$(TORCH_SPEC)"
	$(WPY) -m pip install -q "$$(ls dist/dicomxray-*.whl)[$(TEST_EXTRAS)]"
	cd "$$(mktemp -d)" && "$(CURDIR)/$(WPY)" -c "import dicomxray, sys; \
		assert '$(CURDIR)/src' not in dicomxray.__file__, dicomxray.__file__; print('dicomxray', dicomxray.__version__, 'from', dicomxray.__file__)"
	cd "$$(mktemp -d)" && "$(CURDIR)/$(WHEEL_VENV)/bin/dicomxray" doctor > /dev/null && echo "dicomxray doctor: ok"
	cd "$$(mktemp -d)" && "$(CURDIR)/$(WPY)" -m pytest -c "$(CURDIR)/pyproject.toml" --rootdir "$(CURDIR)" "$(CURDIR)/tests"

# The same suite against the editable checkout (quicker while developing).
dev-test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/mypy

# The documentation site, built strictly: a broken link, a missing reference or a docstring that does not parse fails.
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# An sdist and a wheel in dist/, checked: the wheel holds the package, py.typed and the licence, nothing else.
wheel: install
	rm -rf dist build
	$(PY) -m build --sdist --wheel --outdir dist . > /dev/null
	$(VENV)/bin/check-wheel-contents dist/*.whl
	$(VENV)/bin/twine check --strict dist/*
	$(PY) -m zipfile -l dist/dicomxray-*.whl | awk 'NR > 1 {print $$1}' | grep -v -E '^dicomxray/|^dicomxray-[^/]+\.dist-info/' && \
		{ echo "unexpected files in the wheel"; exit 1; } || true

demo: install
	$(PY) -m dicomxray demo --out demo_out

bench: install
	$(PY) -m pip install -q monai  # an optional peer in the comparison, never a dependency of dicomxray
	$(PY) -m benchmarks.run_all --out bench_out
	$(PY) -m benchmarks.update_readme bench_out

clean:
	rm -rf $(VENV) $(WHEEL_VENV) demo_out bench_out .bench_data dist build site
