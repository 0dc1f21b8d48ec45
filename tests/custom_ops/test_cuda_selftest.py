"""``python -m custom_ops.cuda_selftest`` on a GPU: the CUDA kernels' numbers against numpy.

Runs only where an NVIDIA GPU, its driver and nvcc are present. Elsewhere the GPU numerics are
compile-checked (test_cuda_build.py) and host-emulated (test_cuda_host_emulation.py), not run.
"""

import os
import shutil
import subprocess
import sys

import pytest

from custom_ops import build

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _no_gpu_reason():
    try:
        build.find_cuda()
    except RuntimeError as e:
        return str(e)
    smi = shutil.which("nvidia-smi")
    if not smi or subprocess.run([smi, "-L"], capture_output=True, timeout=60).returncode != 0:
        return ("no NVIDIA GPU here: GPU numerics are compile-checked and host-emulated "
                "(test_cuda_build.py, test_cuda_host_emulation.py); run python -m custom_ops.cuda_selftest on a GPU")
    return None


@pytest.mark.skipif(_no_gpu_reason() is not None, reason=str(_no_gpu_reason()))
def test_cuda_kernels_match_numpy_on_the_gpu():
    r = subprocess.run([sys.executable, "-m", "custom_ops.cuda_selftest"], cwd=ROOT, capture_output=True, text=True,
                       timeout=1200)
    print(r.stdout)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "| bias_act | grad mode 2 | bfloat16 |" in r.stdout
