"""The CUDA kernels' per-thread code, compiled for the host, against the numpy references.

kernels/cuda/upfirdn2d.h and bias_act.h hold the arithmetic of the GPU kernels as __host__
__device__ functions; kernels/cuda/host_emulation.cc evaluates them for every index of the launch
grid behind the C API's arguments. These tests run the cases of ``custom_ops.cuda_selftest`` (the
program a GPU machine runs) on that emulation, so the index arithmetic, the gradient rules and the
activation derivatives of the GPU path are checked on every CI run, without a GPU. The GPU's own
float16/bfloat16 conversions and launch configuration are left to the self-test on a GPU.
"""

import ctypes
import os
import subprocess
import sys

import numpy as np
import pytest

from custom_ops import build, cuda_selftest, kernel_args
from custom_ops.kernel_args import BiasActStruct, Upfirdn2dArgs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    return cuda_selftest.HostBackend(build.build_host_emulation(str(tmp_path_factory.mktemp("host") / "host.so")))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_selftest_cases_match_numpy(backend, seed):
    """upfirdn2d forward / gradient / second order and bias_act modes 0, 1, 2, every activation,
    float32, float16 and float64, random shapes: within the self-test's tolerances."""
    results = cuda_selftest.run(backend, seed=seed, cases=24)
    assert {(r.kernel, r.check) for r in results} == {
        ("upfirdn2d", "forward"), ("upfirdn2d", "gradient"), ("upfirdn2d", "2nd order"),
        ("bias_act", "forward"), ("bias_act", "grad mode 1"), ("bias_act", "grad mode 2")}
    assert all(r.cases > 0 for r in results)
    failures = [f"{r.kernel} {r.check} {r.dtype}: {f}" for r in results for f in r.failures]
    assert not failures, "\n".join(failures[:10])


def test_the_selftest_program_runs_on_the_host():
    r = subprocess.run([sys.executable, "-m", "custom_ops.cuda_selftest", "--host", "--cases=6"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "| upfirdn2d | gradient | float32 | 6 |" in r.stdout and "MISMATCH" not in r.stdout


def _upfirdn2d_status(backend, a: Upfirdn2dArgs, n=1, c=1, dtype=0):
    return backend.lib.sg2_host_upfirdn2d(ctypes.byref(a.struct(n, c)), dtype, None, None, None)


def test_upfirdn2d_limits_agree_with_python(backend):
    """The C API's int32 limits (upfirdn2d_check) and kernel_args.exceeds_kernel, which makes the
    TF wrapper take the reference path, decide alike."""
    big = 2**31 - 3
    cases = [
        (Upfirdn2dArgs(4, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1), 1, 1),
        (Upfirdn2dArgs(4, 4, 1, 1, padx0=big, padx1=-big), 1, 1),  # small output, huge span
        (Upfirdn2dArgs(2048, 2048, 1, 1), 512, 1),  # 2^31 input elements
        (Upfirdn2dArgs(1024, 1024, 1, 1, 2, 2), 1, 512),  # 2^31 output elements
    ]
    for a, n, c in cases:
        too_large = _upfirdn2d_status(backend, a, n, c) == -3
        assert too_large == (a.exceeds_kernel(n, c) is not None), a


def test_c_api_rejects_bad_arguments(backend):
    ok = Upfirdn2dArgs(4, 4, 2, 2)
    assert _upfirdn2d_status(backend, ok, n=0) == 0  # empty batch: nothing to do
    assert _upfirdn2d_status(backend, ok) == -1  # null buffers for a non-empty call
    assert _upfirdn2d_status(backend, Upfirdn2dArgs(4, 4, 2, 2, upx=0)) == -1
    assert _upfirdn2d_status(backend, Upfirdn2dArgs(1, 1, 3, 3)) == -1  # the filter is larger than the input
    x = np.zeros([1, 4, 4, 1], np.float32)
    f = np.ones([2, 2], np.float32)
    y = np.zeros([1, 3, 3, 1], np.float32)
    s = ok.struct(1, 1)
    pointers = (a.ctypes.data for a in (x, f, y))
    assert backend.lib.sg2_host_upfirdn2d(ctypes.byref(s), 2, *pointers) == -2  # bfloat16 exists on the GPU only

    def bias_act(act=1, grad=0, yref=True, xref=True, dy=True):
        s = BiasActStruct(size=4, size_b=0, step_b=1, act=act, grad=grad, alpha=0.2, gain=1.0, clamp=-1.0)
        v = np.zeros(4, np.float32)
        ptr = v.ctypes.data
        return backend.lib.sg2_host_bias_act(ctypes.byref(s), 0, ptr, None, ptr if xref else None,
                                             ptr if yref else None, ptr if dy else None, ptr)

    assert bias_act() == 0
    assert bias_act(act=0) == -1 and bias_act(act=10) == -1 and bias_act(grad=3) == -1
    assert bias_act(grad=1, yref=False) == -1  # gradients read the forward output
    assert bias_act(act=kernel_args.ACT_CODES["swish"], grad=1, xref=False) == -1  # swish's read the input
    assert bias_act(grad=2, dy=False) == -1
