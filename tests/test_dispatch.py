"""Choosing the device: ``auto`` never picks a GPU that is not usable; ``cuda`` says what is missing."""

import numpy as np
import pytest

import fastxent as fx
from fastxent import gpu
from fastxent.synthetic import make_table


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(gpu, "status", lambda: (False, "numba-cuda is not installed; install the GPU extra"))
    monkeypatch.delenv("NUMBA_ENABLE_CUDASIM", raising=False)


def test_auto_stays_on_the_cpu_without_a_gpu(no_gpu):
    assert gpu.choose("auto", np.zeros((10**4, 10**3), np.float32)) == "cpu"
    score = fx.Accumulator("multiclass")
    score.update(np.zeros((3, 2), np.float32), np.array([0, 1, 0]))
    assert score.result().device == "cpu"
    assert fx.cross_entropy(
        np.zeros((3, 2), np.float32), np.array([0, 1, 0]), device="auto"
    ) == pytest.approx(np.log(2))


def test_cuda_without_a_gpu_says_what_is_missing(no_gpu):
    with pytest.raises(
        fx.InputValueError, match="device='cuda' was asked for, but numba-cuda is not installed"
    ):
        fx.cross_entropy(np.zeros((3, 2), np.float32), np.array([0, 1, 0]), device="cuda")
    with pytest.raises(fx.InputValueError, match="install the GPU extra"):
        fx.score(make_table(10, 3), target="label", logits="logits", device="cuda")


def test_status_on_this_machine_is_a_clear_sentence():
    usable, description = gpu.status()
    assert isinstance(usable, bool) and description.endswith((".", ")")) and len(description) > 10
    if not usable:
        assert "pip install 'fastxent[cuda12]'" in description


def test_importing_fastxent_does_not_touch_cuda():
    import subprocess
    import sys

    code = "import sys, fastxent; print('numba.cuda' in sys.modules, 'fastxent.gpu_engine' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
