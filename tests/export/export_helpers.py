"""Shared by the export tests: tiny generators, running runners, comparing uint8 output with float."""

import os
import subprocess
import sys

import keras
import numpy as np
import tensorflow as tf

from tf_stylegan2 import Generator, GeneratorConfig, MappingConfig
from tf_stylegan2.images import to_uint8

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tiny_generator(res: int = 16, c_dim: int = 0, seed: int = 1, **kw) -> Generator:
    """A small float32 generator whose noise strengths and w_avg are non-zero, so noise modes and
    truncation change the output (a fresh generator has both at zero)."""
    keras.utils.set_random_seed(seed)
    kw = {"mapping": MappingConfig(num_layers=2), **kw}
    config = GeneratorConfig(img_resolution=res, z_dim=8, w_dim=8, c_dim=c_dim, channel_base=128, channel_max=16, **kw)
    G = Generator(config)
    rng = np.random.RandomState(seed)
    for v in G.weights:
        if v.path.endswith("noise_strength"):
            v.assign(np.float32(rng.uniform(0.2, 0.5)))
        elif v.path.endswith("w_avg"):
            v.assign(rng.randn(*v.shape).astype(np.float32))
    return G


def run_runner(name: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"runners.{name}", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def assert_quantizes(images_u8: np.ndarray, reference: np.ndarray, atol: float) -> None:
    """Asserts that uint8 ``images_u8`` is ``to_uint8`` of some float images within ``atol`` of ``reference``.

    to_uint8 is monotonic, so that holds exactly when each value lies between the quantizations of
    ``reference - atol`` and ``reference + atol``: the float max-abs-diff bound, seen through uint8.
    """
    images_u8 = np.asarray(images_u8)
    assert images_u8.dtype == np.uint8 and images_u8.shape == reference.shape, (images_u8.dtype, images_u8.shape)
    lo, hi = to_uint8(reference - atol), to_uint8(reference + atol)
    outside = (images_u8 < lo) | (images_u8 > hi)
    assert not outside.any(), f"{outside.sum()} of {outside.size} values differ by more than {atol} before rounding"


def keras_images(G: Generator, z, c=None, psi=1.0, noise_mode="const", seed=None) -> np.ndarray:
    c = None if c is None else tf.constant(c)
    seed = None if seed is None else tf.constant(seed, tf.int64)
    return G(tf.constant(z), c, truncation_psi=psi, noise_mode=noise_mode, noise_seed=seed).numpy()
