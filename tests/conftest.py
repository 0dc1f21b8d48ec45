"""Test set-up shared by every test: repository root on sys.path, quiet TF, deterministic seeds."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Reference ops unless asked otherwise (TF_STYLEGAN2_OPS=auto runs everything on the compiled
# kernels when built): results must not depend on whether a library lies in the tree.
# tests/custom_ops/test_compiled.py builds and tests the compiled kernels explicitly.
os.environ.setdefault("TF_STYLEGAN2_OPS", "ref")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    np.random.seed(0)
    tf.random.set_seed(0)
    yield
