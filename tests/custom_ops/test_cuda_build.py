"""The CUDA build, compiled on every run where nvcc exists (warnings are errors), without a GPU.

Compiles the TF-free launch code (kernels/cuda/*.cu) once with nvcc for the release targets, links
it into the C API library of the self-test and into the TF op library (kernels/*.cc with
-DGOOGLE_CUDA=1 against the installed TensorFlow's headers), and checks that the CUDA-built op
library loads and computes on a CPU-only TensorFlow, says what it was built for, and that the
loader turns "no GPU this library can run on" into one warning and the reference ops.
"""

import ctypes
import os
import subprocess
import sys
import time

import pytest

from custom_ops import build

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

try:
    CUDA = build.find_cuda()
except RuntimeError as e:
    CUDA = None
    REASON = str(e)
pytestmark = pytest.mark.skipif(CUDA is None, reason=f"no CUDA toolkit: {REASON if CUDA is None else ''}")


@pytest.fixture(scope="module")
def objects(tmp_path_factory):
    started = time.perf_counter()
    objects = build.compile_cuda_objects(CUDA, str(tmp_path_factory.mktemp("cuda")))
    print(f"\nnvcc, {len(objects)} sources for {build.archs_label()}: {time.perf_counter() - started:.1f} s")
    return objects


def test_launch_code_builds_alone_into_the_c_api(objects, tmp_path):
    lib = ctypes.CDLL(build.build_cuda_api(str(tmp_path / "sg2_cuda.so"), objects))
    assert lib.sg2_cuda_runtime_version() // 1000 >= 12
    lib.sg2_error_string.restype = ctypes.c_char_p
    assert lib.sg2_error_string(-3).decode().startswith("tensor too large")
    message = ctypes.create_string_buffer(512)
    if lib.sg2_cuda_check_devices(message, len(message)) != 0:  # no GPU here: says so, in one line
        assert message.value.decode().startswith("no usable GPU") and "\n" not in message.value.decode()


def test_gpu_op_library_loads_and_runs_on_a_cpu_only_tensorflow(objects, tmp_path):
    started = time.perf_counter()
    path = build.build(str(tmp_path / "_stylegan2_ops.so"), portable=True, cuda=True, cuda_objects=objects)
    print(f"\ng++ -DGOOGLE_CUDA=1, {len(build.TF_SOURCES)} sources and link: {time.perf_counter() - started:.1f} s")
    # A fresh process: this one may hold the CPU library already (one library per process).
    script = f"""
import warnings, numpy as np, tensorflow as tf
from custom_ops import bias_act, loader, setup_filter, upfirdn2d
lib = loader.load({path!r})
info = loader.build_info()
assert loader.has_gpu_kernels() and info["archs"] == {build.archs_label()!r}, info
x = tf.random.normal([2, 6, 6, 5])
f = setup_filter([1, 3, 3, 1])
for impl in ("custom", "ref"):  # the CPU kernels of the CUDA build
    globals()[impl] = [upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1], gain=4, impl=impl).numpy(),
                       bias_act(x, tf.ones([5]), act="swish", clamp=1.0, impl=impl).numpy()]
for a, b in zip(custom, ref):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
problem = lib.style_gan2_cuda_check().numpy().decode()
assert problem.startswith("no usable GPU"), problem
loader.gpu_visible = lambda: True  # as if TensorFlow saw a GPU this library cannot run on
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    assert not loader.use_custom("auto") and not loader.use_custom("auto")
assert len(caught) == 1 and "no usable GPU" in str(caught[0].message), [str(w.message) for w in caught]
print("OK", info["cuda"])
"""
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "OK" in r.stdout
