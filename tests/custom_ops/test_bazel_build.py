"""The Bazel build of the kernels: builds offline and gives a library the loader accepts.

Needs the `bazel` binary (Debian: apt-get install bazel-bootstrap); without it this one test is
skipped and the same sources are still compiled and tested through custom_ops.build
(test_compiled.py).
"""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.skipif(shutil.which("bazel") is None, reason="bazel not installed (apt-get install bazel-bootstrap)")
def test_bazel_builds_a_loadable_library():
    env = {**os.environ, "PYTHON_BIN_PATH": sys.executable}
    # A short idle limit so the Bazel server does not outlive the test run by hours.
    r = subprocess.run(["bazel", "--max_idle_secs=30", "build", "--jobs=2", "//:ops"], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    lib = os.path.join(ROOT, "bazel-bin", "custom_ops", "_stylegan2_ops.so")
    # Load in a fresh process: the test process may already hold the g++-built library.
    check = ("import sys; sys.path.insert(0, '.'); import tensorflow as tf; from custom_ops import loader; "
             f"lib = loader.load({lib!r}); print(lib.style_gan2_ops_info().numpy().decode(), tf.__version__)")
    r = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    built_for, running = r.stdout.split()[-2:]
    assert built_for == running
