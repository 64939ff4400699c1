# Quickstart targets: each sets itself up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: test lint demo bench install clean

$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,plots]'
	@touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check ref_numpy torch_impl parity_tests scripts

test: lint
	HYPOTHESIS_PROFILE=ci $(PY) -m pytest parity_tests -q -p no:cacheprovider

demo: $(STAMP)
	$(VENV)/bin/yolo-ref audit

# Benchmarks print ratios against a baseline timed in the same run (not part of the tests).
bench: $(STAMP)
	$(VENV)/bin/yolo-ref bench all

clean:
	rm -rf $(VENV) build *.egg-info .hypothesis
