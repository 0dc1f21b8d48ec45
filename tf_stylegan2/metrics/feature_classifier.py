"""A small convolutional classifier whose penultimate layer is the feature space of the training
metrics on the embedded datasets (no Inception network ships with the project, and none may be
downloaded). Trained deterministically on the dataset's own class labels in seconds on a CPU. Its
class probabilities give the second number: how many generated images show a class clearly
(:func:`sample_accuracy`).
"""

from __future__ import annotations

import math
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from tf_stylegan2.data import is_class_labelled
from tf_stylegan2.fileio import UserError

FEATURE_DIM = 64


def _build(resolution: int, channels: int, c_dim: int, seed: int) -> keras.Model:
    """Conv(16) -> pool -> Conv(32) -> pool ... -> 4x4x64 -> Dense(FEATURE_DIM) = features ->
    ReLU -> Dense(c_dim) = logits. Outputs ``[features, logits]``; inputs float in [-1, 1]."""
    seeds = iter(range(seed * 100, seed * 100 + 100))

    def init():
        return keras.initializers.GlorotUniform(seed=next(seeds))

    def conv(width: int) -> keras.layers.Layer:
        return keras.layers.Conv2D(width, 3, padding="same", activation="relu", kernel_initializer=init(), dtype="float32")

    x = inputs = keras.Input([resolution, resolution, channels], dtype="float32")
    width = 16
    for _ in range(int(math.log2(resolution)) - 2):  # down to 4x4
        x = keras.layers.AveragePooling2D(2, dtype="float32")(conv(width)(x))
        width = min(2 * width, 64)
    x = conv(64)(x)
    features = keras.layers.Dense(FEATURE_DIM, kernel_initializer=init(), dtype="float32")(keras.layers.Flatten()(x))
    logits = keras.layers.Dense(c_dim, kernel_initializer=init(), dtype="float32")(keras.layers.ReLU()(features))
    return keras.Model(inputs, [features, logits])


class FeatureClassifier:
    """The trained network; ``features`` and ``predict`` take uint8 NHWC images.

    Features are standardised per dimension with the statistics of the training images (``shift``,
    ``scale``), so distances have a fixed scale and KID's kernel (x . y / F + 1)^3 sees unit-sized
    features, as it does with Inception features.
    """

    def __init__(self, model: keras.Model, shift: np.ndarray, scale: np.ndarray):
        self.model = model
        self.shift, self.scale = shift, scale
        self._forward = tf.function(lambda x: model(tf.cast(x, tf.float32) / 127.5 - 1.0), reduce_retracing=True)

    @property
    def input_shape(self):
        return tuple(self.model.input_shape[1:])

    def _outputs(self, images: np.ndarray, which: int, batch_size: int = 500) -> np.ndarray:
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.shape[1:] != self.input_shape:
            raise ValueError(f"expected uint8 images [N, {self.input_shape}], got {images.dtype} {images.shape}")
        out = [self._forward(images[i : i + batch_size])[which].numpy() for i in range(0, len(images), batch_size)]
        return np.concatenate(out).astype(np.float64)

    def features(self, images: np.ndarray) -> np.ndarray:
        """float64 ``[N, FEATURE_DIM]`` standardised penultimate-layer features."""
        return (self._outputs(images, 0) - self.shift) / self.scale

    def predict(self, images: np.ndarray) -> np.ndarray:
        """int ``[N]`` predicted classes."""
        return self._outputs(images, 1).argmax(axis=1)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """float64 ``[N, c_dim]``: the softmax of the logits, the classifier's confidence per class."""
        logits = self._outputs(images, 1)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)


CONFIDENCE = 0.9  # an unconditional generator's image counts when one class has more than this


def sample_accuracy(probabilities: np.ndarray, classes: Optional[np.ndarray] = None,
                    confidence: float = CONFIDENCE) -> float:
    """The ``acc*_clf`` number of generated images from their class ``probabilities`` ``[N, c_dim]``.

    With ``classes`` (int ``[N]``, what a conditional generator was asked for): the fraction
    classified as that class. Without (an unconditional generator): the fraction that the classifier
    puts in some class with probability above ``confidence``, i.e. images that clearly show one.
    """
    probabilities = np.asarray(probabilities)
    if classes is not None:
        return float(np.mean(probabilities.argmax(axis=1) == np.asarray(classes)))
    return float(np.mean(probabilities.max(axis=1) > confidence))


def train_feature_classifier(
    dataset,
    *,
    steps: int = 600,
    batch_size: int = 64,
    seed: int = 0,
    train_indices: Optional[np.ndarray] = None,
) -> FeatureClassifier:
    """Trains the classifier on a class-labelled ImageDataset (all images, or ``train_indices``).

    Deterministic: initial weights come from seeded initializers and the batches from
    ``np.random.RandomState(seed)``, so the same call gives the same network (within float round-off
    of the CPU kernels) and the metric stays comparable across runs and resumes.
    """
    info = dataset.info
    if info.c_dim < 2 or not is_class_labelled(dataset):
        raise UserError(f"the feature classifier needs class labels (dataset {info.path} has c_dim {info.c_dim})")
    indices = np.arange(len(dataset)) if train_indices is None else np.asarray(train_indices)
    images = dataset.images(indices)
    classes = dataset.labels[indices].argmax(axis=1)
    model = _build(info.resolution, info.channels, info.c_dim, seed)
    optimizer = keras.optimizers.Adam(1e-3)
    variables = model.trainable_variables

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            logits = model(tf.cast(x, tf.float32) / 127.5 - 1.0)[1]
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    rs = np.random.RandomState(seed)
    for _ in range(steps):
        batch = rs.randint(0, len(indices), batch_size)
        step(tf.constant(images[batch]), tf.constant(classes[batch]))
    raw = FeatureClassifier(model, np.zeros(FEATURE_DIM), np.ones(FEATURE_DIM)).features(images)
    std = raw.std(axis=0)
    return FeatureClassifier(model, raw.mean(axis=0), np.where(std > 1e-6, std, 1.0))
