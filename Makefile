# The two set-up commands of the README: `make demo` and `make test`. Each creates .venv itself.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# torch 2.13 CPU is the reference for the tests that compare against it (they skip without it).
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test bench lint format clean

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	touch $@

$(VENV)/.installed: $(VENV)/.created pyproject.toml
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[test]"
	-$(PY) -m pip install -q "$(TORCH_SPEC)"
	touch $@

demo: $(VENV)/.installed
	$(PY) data/demo.py data/digits_predictions.parquet

test: $(VENV)/.test-installed
	$(VENV)/bin/ruff check fastxent tests bench data
	$(VENV)/bin/ruff format --check fastxent tests bench data
	$(PY) -m pytest -q

# Two threads for every method (the machines this was written for have two cores); the table in
# the README's performance section is regenerated from the JSON.
bench: $(VENV)/.test-installed
	$(PY) -m pip install -q -e ".[bench]"
	NUMBA_NUM_THREADS=2 OMP_NUM_THREADS=2 $(PY) -m pytest bench -q -p no:cacheprovider \
		--benchmark-columns=median,iqr,rounds --benchmark-sort=name \
		--benchmark-min-rounds=5 --benchmark-json=bench/results.json
	$(PY) bench/summarize.py bench/results.json README.md

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check fastxent tests bench data

format: $(VENV)/.test-installed
	$(VENV)/bin/ruff format fastxent tests bench data

clean:
	rm -rf $(VENV) build *.egg-info
	find . -name __pycache__ -prune -exec rm -rf {} +
