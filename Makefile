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
	$(VENV)/bin/fastxent score data/digits_predictions.parquet --target label --logits logits --group-by split
	$(VENV)/bin/fastxent score data/digits_predictions.parquet --target label --probs probs

# The suite runs in TEST_WORKERS processes (pytest-xdist), a test file's tests in one of them:
# most of a cold run is Numba compiling kernels, one core per process, and the processes share
# the on-disk kernel cache (two cores: 12.6 -> 7.2 minutes).
TEST_WORKERS ?= 2

test: $(VENV)/.test-installed
	$(VENV)/bin/ruff check fastxent fastxent_launch.py tests bench data
	$(VENV)/bin/ruff format --check fastxent fastxent_launch.py tests bench data
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile
	# the GPU tests again, on Numba's CUDA simulator (it must be on before Numba is imported)
	# (one file: its tests shared out one by one, 56 -> 25 s)
	NUMBA_ENABLE_CUDASIM=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist load tests/gpu

# Two threads for every method (the machines this was written for have two cores), idle OpenMP
# threads sleeping (as the fastxent command sets it) so that one library's spinning pool does not
# slow the next. `fastxent bench` times every workload and method in a process of its own, a pytest
# session whose timer is pytest-benchmark (the files it scores are kept in bench/.data for the next
# run), writes bench/report/ and regenerates the README's Performance section;
# bench/reliability.py then prints the peak-memory and integrity-check measurements of issue 18.
BENCH_ENV := NUMBA_NUM_THREADS=2 OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive FASTXENT_BENCH_DATA=bench/.data

bench: $(VENV)/.test-installed
	$(PY) -m pip install -q -e ".[bench]"
	$(BENCH_ENV) $(VENV)/bin/fastxent bench --out bench/report --readme README.md
	$(BENCH_ENV) $(PY) bench/reliability.py

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check fastxent fastxent_launch.py tests bench data

format: $(VENV)/.test-installed
	$(VENV)/bin/ruff format fastxent fastxent_launch.py tests bench data

clean:
	rm -rf $(VENV) build *.egg-info
	find . -name __pycache__ -prune -exec rm -rf {} +
