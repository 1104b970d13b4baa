#!/usr/bin/env bash
# The GPU checks, in one command on a machine with an NVIDIA GPU (the `device` tool's machine:
# python3 with torch, numba, numba-cuda, pyarrow, pytest; cramjam carried as a wheel in .whl/):
# the GPU tests on the real GPU, then bench/gpu_bench.py. Logs and results go to $OUT (or ./gpu-out).
# Wheels in .whl/ (cp312) go first on the path: cramjam, and numpy 2.4 where the machine's numpy is
# 2.5, which numba-cuda 0.30 cannot type (it registers np.row_stack, removed in NumPy 2.5).
set -u
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
{
  nvidia-smi -L
  lscpu | grep -E "^Model name|^CPU\(s\)"
  python3 -m pip list 2>/dev/null | grep -i -E "^(numba|numba-cuda|llvmlite|cuda-bindings|cramjam|torch|pyarrow|numpy|tqdm|hypothesis|pytest) "
} 2>&1 | tee "$OUT/machine.txt"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
fi
export PYTHONPATH="$PWD:/tmp/site"
python3 -c "import numpy; from fastxent import gpu; print(\"numpy\", numpy.__version__, gpu.status())" 2>&1 | tee -a "$OUT/machine.txt"
timeout "${TESTS_TIMEOUT:-240}" python3 -m pytest -q -p no:cacheprovider --durations=8 tests/gpu tests/test_cuda_ptx.py \
  2>&1 | tee "$OUT/gpu_tests.log"
timeout "${BENCH_TIMEOUT:-240}" python3 bench/gpu_bench.py --out "$OUT/gpu_bench.json" 2>&1 | tee "$OUT/gpu_bench.log"
