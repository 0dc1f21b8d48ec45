"""Discriminator overfitting made visible: D's mean logit on the images it trains on against real
images it never saw, at every checkpoint of a run (Karras et al. 2020, "Training Generative
Adversarial Networks with Limited Data", Figure 1: with limited data the two drift apart as D
memorises its training set, while augmentation keeps them together).
"""

from __future__ import annotations

import glob
import hashlib
import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from tf_stylegan2 import checkpoint
from tf_stylegan2.config import StyleGAN2Config
from tf_stylegan2.data import ImageDataset
from tf_stylegan2.fileio import UserError
from tf_stylegan2.networks import Discriminator

Images = Tuple[np.ndarray, np.ndarray]  # uint8 [N, R, R, C], labels float32 [N, c_dim]


def _digest(image: np.ndarray) -> bytes:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).digest()


def training_images(dataset: ImageDataset, count: Optional[int] = None) -> Images:
    """The first ``count`` (default all) images of the training set, with their labels."""
    n = len(dataset) if count is None else min(count, len(dataset))
    return dataset.images(np.arange(n)), dataset.labels[:n]


def held_out_images(train: ImageDataset, other: ImageDataset, count: int, chunk: int = 1000) -> Images:
    """The first ``count`` images of ``other`` that are not, pixel for pixel, in ``train``."""
    seen = {_digest(img) for start in range(0, len(train), chunk)
            for img in train.images(np.arange(start, min(start + chunk, len(train))))}
    picked: List[int] = []
    for start in range(0, len(other), chunk):
        indices = np.arange(start, min(start + chunk, len(other)))
        picked += [int(i) for i, img in zip(indices, other.images(indices)) if _digest(img) not in seen]
        if len(picked) >= count:
            break
    if len(picked) < count:
        raise UserError(f"{other.info.path} holds only {len(picked)} images that are not in {train.info.path}; "
                        f"{count} needed")
    picked = np.asarray(picked[:count])
    return other.images(picked), other.labels[picked]


def mean_logit(D: Discriminator, images: Images, batch: int = 100) -> float:
    """D's mean output on uint8 images (no augmentation), in batches the minibatch-std groups divide."""
    pixels, labels = images
    group = D.config.mbstd_group_size or batch
    batch -= batch % group
    if len(pixels) % group:
        raise ValueError(f"{len(pixels)} images do not split into minibatch-std groups of {group}")
    total = 0.0
    for start in range(0, len(pixels), batch):
        x = pixels[start:start + batch].astype(np.float32) / 127.5 - 1
        c = labels[start:start + batch] if D.c_dim else None
        total += float(np.sum(D(x, c).numpy()))
    return total / len(pixels)


def checkpoint_scores(run_dir: str, train: Images, held_out: Images) -> List[Dict[str, float]]:
    """Per checkpoint of the run, oldest first: ``cur_nimg``, ``D/train`` and ``D/held_out`` (mean
    logits) and their difference ``D/gap``."""
    cfg = StyleGAN2Config.from_dict(checkpoint.read_run_options(run_dir)["config"])
    D = Discriminator(cfg.D)
    out = []
    for path in sorted(glob.glob(os.path.join(run_dir, checkpoint.CHECKPOINTS, "ckpt-*"))):
        checkpoint.restore({"D": D.weights}, path)
        scores = {"D/train": mean_logit(D, train), "D/held_out": mean_logit(D, held_out)}
        out.append({"cur_nimg": int(os.path.basename(path).split("-")[1]), **scores,
                    "D/gap": scores["D/train"] - scores["D/held_out"]})
    return out
