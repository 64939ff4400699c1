# Quickstart targets: each sets itself up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: test demo bench install clean

$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,plots]'
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	HYPOTHESIS_PROFILE=ci $(PY) -m pytest parity_tests -q -p no:cacheprovider

demo: $(STAMP)
	$(PY) scripts/audit.py

# Benchmarks print ratios against a baseline timed in the same run (not part of the tests).
bench: $(STAMP)
	$(PY) scripts/bench_nms.py
	$(PY) scripts/bench_assign.py
	$(PY) scripts/bench_loss.py --threads 1
	$(PY) scripts/bench_map.py --scale 0.2

clean:
	rm -rf $(VENV) build *.egg-info .hypothesis
