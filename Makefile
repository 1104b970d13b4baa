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

test: $(VENV)/.test-installed
	$(VENV)/bin/ruff check fastxent fastxent_launch.py tests bench data
	$(VENV)/bin/ruff format --check fastxent fastxent_launch.py tests bench data
	$(PY) -m pytest -q
	# the GPU tests again, on Numba's CUDA simulator (it must be on before Numba is imported)
	NUMBA_ENABLE_CUDASIM=1 $(PY) -m pytest -q tests/gpu

# Two threads for every method (the machines this was written for have two cores), idle OpenMP
# threads sleeping (as the fastxent command sets it) so that one library's spinning pool does not
# slow the next. Each in-memory method (fastxent, torch.compile, JAX, optax, eager torch) runs in a
# process of its own and writes bench/results-cpu.json; files in another process, with
# pytest-benchmark. The README's tables are regenerated.
BENCH_ENV := NUMBA_NUM_THREADS=2 OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive
BENCH_OPTS := -q -p no:cacheprovider --benchmark-columns=median,iqr,rounds --benchmark-sort=name \
	--benchmark-min-rounds=5

bench: $(VENV)/.test-installed
	$(PY) -m pip install -q -e ".[bench]"
	$(BENCH_ENV) $(PY) -m pytest bench/test_bench_cpu.py -q -p no:cacheprovider
	$(BENCH_ENV) $(PY) -m pytest bench/test_bench_files.py $(BENCH_OPTS) --benchmark-json=bench/results-files.json
	$(BENCH_ENV) $(PY) -m pytest bench/test_bench_features.py $(BENCH_OPTS) --benchmark-json=bench/results-features.json
	$(BENCH_ENV) $(PY) bench/reliability.py
	$(PY) bench/summarize.py README.md bench/results-cpu.json bench/results-files.json bench/results-features.json
	$(BENCH_ENV) $(VENV)/bin/fastxent bench --out bench/report --readme README.md

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check fastxent fastxent_launch.py tests bench data

format: $(VENV)/.test-installed
	$(VENV)/bin/ruff format fastxent fastxent_launch.py tests bench data

clean:
	rm -rf $(VENV) build *.egg-info
	find . -name __pycache__ -prune -exec rm -rf {} +
