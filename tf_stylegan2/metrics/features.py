"""Feature distances between generated images and a dataset, in a FeatureClassifier's feature space:
what the training loop reports as its proof of learning.

An image source is either an array of images or a function ``fn(n) -> n images``; images are uint8
NHWC, or float NHWC in [-1, 1] (the generator's range), which are rounded to uint8 first exactly as
real images are stored, so both sides see the same quantisation (as in NVIDIA's metrics).
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple, Union

import numpy as np
import tensorflow as tf

from tf_stylegan2.fileio import UserError
from tf_stylegan2.images import to_uint8
from tf_stylegan2.metrics.feature_classifier import FeatureClassifier
from tf_stylegan2.metrics.frechet import frechet_distance, mean_cov
from tf_stylegan2.metrics.kid import kernel_distance

ImageSource = Union[np.ndarray, Callable[[int], np.ndarray]]


def _as_uint8(images) -> np.ndarray:
    images = np.asarray(images)
    return images if images.dtype == np.uint8 else to_uint8(images)


def source_features(
    source: ImageSource, classifier: FeatureClassifier, num_images: int, batch_size: int = 100
) -> np.ndarray:
    """Features ``[num_images, F]`` of the first ``num_images`` images of ``source``."""
    if not callable(source):
        if len(source) < num_images:
            raise ValueError(f"need {num_images} images, got {len(source)}")
        return classifier.features(_as_uint8(source[:num_images]))
    chunks, count = [], 0
    while count < num_images:
        images = _as_uint8(source(min(batch_size, num_images - count)))
        chunks.append(classifier.features(images))
        count += len(images)
    return np.concatenate(chunks)[:num_images]


def real_features(dataset, classifier: FeatureClassifier, num_images: int, seed: int = 0) -> np.ndarray:
    """Features of min(num_images, N) dataset images drawn without replacement by RandomState(seed)."""
    n = min(num_images, len(dataset))
    indices = np.sort(np.random.RandomState(seed).choice(len(dataset), n, replace=False))
    return classifier.features(dataset.images(indices))


def feature_frechet_distance(source: ImageSource, dataset, classifier: FeatureClassifier, num_images: int,
                             seed: int = 0) -> float:
    """Fréchet distance between ``num_images`` images of ``source`` and as many dataset images (all
    of them if the dataset is smaller), in the classifier's feature space."""
    fake = mean_cov(source_features(source, classifier, num_images))
    real = mean_cov(real_features(dataset, classifier, num_images, seed))
    return frechet_distance(*fake, *real)


def feature_kernel_distance(source: ImageSource, dataset, classifier: FeatureClassifier, num_images: int,
                            seed: int = 0, num_subsets: int = 100, max_subset_size: int = 1000) -> float:
    """KID between ``num_images`` images of ``source`` and the dataset, in the classifier's feature space."""
    fake = source_features(source, classifier, num_images)
    real = real_features(dataset, classifier, num_images, seed)
    return kernel_distance(fake, real, num_subsets, max_subset_size, seed)


def generator_source(G, dataset, seed: int = 0, truncation_psi: float = 1.0, noise_mode: str = "random",
                     batch_size: Optional[int] = None, with_classes: bool = False) -> Callable[[int], Any]:
    """``fn(n) -> float images [n, R, R, C]`` from generator ``G``: z ~ N(0, I) and, for a
    conditional G, labels of random dataset images (as stylegan2-ada's metrics draw them), all from
    ``RandomState(seed)``; random noise is seeded per call too, so the sequence is reproducible.
    ``with_classes``: ``fn(n) -> (images, classes)``, the class index each image was generated for
    (None for an unconditional G)."""
    if G.c_dim and G.c_dim != dataset.info.c_dim:
        raise UserError(f"generator has c_dim {G.c_dim} but dataset {dataset.info.path} has {dataset.info.c_dim}")
    rs = np.random.RandomState(seed)
    run = tf.function(lambda z, c, s: G(z, c, truncation_psi=truncation_psi, noise_mode=noise_mode, noise_seed=s),
                      reduce_retracing=True)
    calls = [0]

    def sample(n: int) -> np.ndarray:
        z = rs.randn(n, G.z_dim).astype(np.float32)
        c = dataset.labels[rs.randint(0, len(dataset), n)] if G.c_dim else None
        calls[0] += 1
        images = run(tf.constant(z), None if c is None else tf.constant(c), tf.constant([seed, calls[0]])).numpy()
        if with_classes:
            return images, None if c is None else c.argmax(axis=1)
        return images

    return sample


def generator_outputs(G, dataset, classifier: FeatureClassifier, num_images: int, seed: int = 0,
                      truncation_psi: float = 1.0, batch_size: int = 100
                      ) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """What the ``*_clf`` metrics read of ``num_images`` images of ``generator_source(G, dataset,
    seed)``: their features, class probabilities and the classes they were generated for (None for an
    unconditional G), the same images for all three."""
    source = generator_source(G, dataset, seed=seed, truncation_psi=truncation_psi, with_classes=True)
    features, probabilities, classes = [], [], []
    count = 0
    while count < num_images:
        images, c = source(min(batch_size, num_images - count))
        images = _as_uint8(images)
        features.append(classifier.features(images))
        probabilities.append(classifier.probabilities(images))
        classes.append(c)
        count += len(images)
    return (np.concatenate(features), np.concatenate(probabilities),
            None if classes[0] is None else np.concatenate(classes))
