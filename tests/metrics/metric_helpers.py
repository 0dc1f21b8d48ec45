"""Stand-ins for the feature networks (fixed random projections of pixels, seconds to run), a tiny
generator and small datasets, for the metric tests."""

import hashlib

import numpy as np
import tensorflow as tf

from tf_stylegan2 import Generator, GeneratorConfig, MappingConfig
from tf_stylegan2.data import DatasetInfo, ImageDataset

POOL_SIZE = 4  # images are area-resized to 4x4 before the projection


def _identity(name: str) -> dict:
    return {"network": name, "file": f"{name}.test", "sha256": hashlib.sha256(name.encode()).hexdigest(),
            "format": "stand-in"}


def _pixels(images: tf.Tensor) -> tf.Tensor:
    x = tf.image.resize(tf.cast(images, tf.float32) / 255.0, [POOL_SIZE, POOL_SIZE], method="area")
    return tf.reshape(x, [-1, POOL_SIZE * POOL_SIZE * 3])


class StandInInception:
    """``images -> {"pool3": [N, dim], "logits": [N, classes]}``, like detectors.load_inception's."""

    def __init__(self, dim: int = 12, classes: int = 10, seed: int = 0, name: str = "stand-in inception"):
        rs = np.random.RandomState(seed)
        self.pool = tf.constant(rs.randn(POOL_SIZE * POOL_SIZE * 3, dim).astype(np.float32))
        self.fc = tf.constant(rs.randn(POOL_SIZE * POOL_SIZE * 3, classes).astype(np.float32) * 2)
        self.identity = _identity(name)
        self.calls = 0

    def __call__(self, images):
        self.calls += 1  # counted at trace time inside tf.function: > 0 means it was used
        x = _pixels(images)
        return {"pool3": x @ self.pool, "logits": x @ self.fc}


class StandInVGG16:
    """``features(images) -> [N, dim]`` and ``lpips(a, b)``: the squared L2 distance, like
    detectors.load_vgg16's."""

    def __init__(self, dim: int = 8, seed: int = 1):
        self.proj = tf.constant(np.random.RandomState(seed).randn(POOL_SIZE * POOL_SIZE * 3, dim).astype(np.float32))
        self.identity = _identity("stand-in vgg16")

    def features(self, images):
        return _pixels(images) @ self.proj

    def lpips(self, a, b):
        return tf.reduce_sum(tf.square(a - b), axis=[1, 2, 3])


def tiny_generator(resolution: int = 8, c_dim: int = 0, channels: int = 3, seed: int = 0) -> Generator:
    import keras

    keras.utils.set_random_seed(seed)
    return Generator(GeneratorConfig(img_resolution=resolution, img_channels=channels, z_dim=4, w_dim=4, c_dim=c_dim,
                                     channel_base=32, channel_max=8, mapping=MappingConfig(num_layers=1)))


def random_dataset(num_images: int = 40, resolution: int = 8, c_dim: int = 0, seed: int = 0, channels: int = 3,
                   name: str = "random") -> ImageDataset:
    rs = np.random.RandomState(seed)
    pixels = rs.randint(0, 256, [num_images, resolution, resolution, channels]).astype(np.uint8)
    labels = np.eye(c_dim, dtype=np.float32)[rs.randint(0, c_dim, num_images)] if c_dim else \
        np.zeros([num_images, 0], np.float32)
    return ImageDataset(DatasetInfo(name, name, num_images, resolution, channels, c_dim), labels, cache=pixels)
