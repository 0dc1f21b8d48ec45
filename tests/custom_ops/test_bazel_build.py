"""The Bazel build of the kernels: builds offline and gives a library the loader accepts, for the
CPU (``bazel build //:ops``) and, where a CUDA toolkit exists, for CPU and GPU (``--config=cuda``).

Needs the `bazel` binary (Debian: apt-get install bazel-bootstrap); without it these tests are
skipped and the same sources are still compiled and tested through custom_ops.build
(test_compiled.py, test_cuda_build.py).
"""

import os
import shutil
import subprocess
import sys

import pytest

from custom_ops import build

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

try:
    build.find_cuda()
    NO_CUDA = None
except RuntimeError as e:
    NO_CUDA = str(e)


def _bazel_build(*options):
    env = {**os.environ, "PYTHON_BIN_PATH": sys.executable}
    # A short idle limit so the Bazel server does not outlive the test run by hours.
    r = subprocess.run(["bazel", "--max_idle_secs=30", "build", "--jobs=2", "//:ops", *options], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    lib = os.path.join(ROOT, "bazel-bin", "custom_ops", "_stylegan2_ops.so")
    # Load in a fresh process: the test process may already hold the g++-built library.
    check = ("import sys; sys.path.insert(0, '.'); import tensorflow as tf; from custom_ops import loader; "
             f"loader.load({lib!r}); info = loader.build_info(); "
             "print(info['tensorflow'], tf.__version__, info['cuda'])")
    r = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    built_for, running, cuda = r.stdout.split()[-3:]
    assert built_for == running
    return cuda


@pytest.mark.skipif(shutil.which("bazel") is None, reason="bazel not installed (apt-get install bazel-bootstrap)")
def test_bazel_builds_a_loadable_cpu_library():
    assert _bazel_build() == "0"


@pytest.mark.skipif(shutil.which("bazel") is None, reason="bazel not installed (apt-get install bazel-bootstrap)")
@pytest.mark.skipif(NO_CUDA is not None, reason=f"no CUDA toolkit: {NO_CUDA}")
def test_bazel_builds_a_loadable_cuda_library():
    assert int(_bazel_build("--config=cuda")) // 1000 >= 12
