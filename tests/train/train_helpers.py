"""Tiny configurations and datasets for the training tests (seconds per step on a CPU)."""

import dataclasses

import numpy as np

from tf_stylegan2.config import resolve
from tf_stylegan2.data import DatasetInfo, ImageDataset


def tiny_config(resolution: int = 8, c_dim: int = 0, g=None, d=None, **train):
    """The 'small' preset narrowed to 16 channels and 16-wide latents, batch 4 unless given."""
    cfg = resolve("small", resolution, c_dim=c_dim)
    G = dataclasses.replace(cfg.G, channel_base=64, channel_max=16, z_dim=16, w_dim=16, **(g or {}))
    D = dataclasses.replace(cfg.D, channel_base=64, channel_max=16, **(d or {}))
    train = dataclasses.replace(cfg.train, **{"batch_size": 4, **train})
    return dataclasses.replace(cfg, G=G, D=D, train=train)


def random_dataset(num_images: int = 32, resolution: int = 8, c_dim: int = 0, seed: int = 0) -> ImageDataset:
    """An in-memory dataset of random pixels (class labels when c_dim > 0)."""
    rs = np.random.RandomState(seed)
    pixels = rs.randint(0, 256, [num_images, resolution, resolution, 3]).astype(np.uint8)
    labels = np.zeros([num_images, 0], np.float32)
    if c_dim:
        labels = np.eye(c_dim, dtype=np.float32)[rs.randint(0, c_dim, num_images)]
    info = DatasetInfo("random", "random", num_images, resolution, 3, c_dim)
    return ImageDataset(info, labels, cache=pixels)
