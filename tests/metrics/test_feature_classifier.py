"""The feature classifier of the embedded dataset and the feature distances built on it."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from scipy.ndimage import gaussian_filter

from tf_stylegan2 import Generator, GeneratorConfig, MappingConfig
from tf_stylegan2.data import DatasetInfo, ImageDataset, open_dataset
from tf_stylegan2.fileio import UserError
from tf_stylegan2.metrics import (
    feature_frechet_distance,
    feature_kernel_distance,
    frechet_distance,
    generator_source,
    mean_cov,
    train_feature_classifier,
)
from tf_stylegan2.metrics.feature_classifier import sample_accuracy
from tf_stylegan2.metrics.features import generator_outputs

SPLIT = np.random.RandomState(123).permutation(10000)
TRAIN, HELD_OUT = np.sort(SPLIT[:5000]), np.sort(SPLIT[5000:])


@pytest.fixture(scope="module")
def shapes():
    return open_dataset("builtin:shapes32")


@pytest.fixture(scope="module")
def classifier(shapes):
    return train_feature_classifier(shapes, train_indices=TRAIN)


def test_classifies_held_out_images(shapes, classifier):
    accuracy = np.mean(classifier.predict(shapes.images(HELD_OUT)) == shapes.labels[HELD_OUT].argmax(axis=1))
    assert accuracy > 0.95, accuracy


def test_fd_small_between_real_halves_and_large_for_blur_and_noise(shapes, classifier):
    half_a, half_b = shapes.images(HELD_OUT[:2000]), shapes.images(HELD_OUT[2000:4000])
    stats_a = mean_cov(classifier.features(half_a))
    blurred = np.rint(gaussian_filter(half_b.astype(np.float64), sigma=(0, 1.5, 1.5, 0))).astype(np.uint8)
    noise = np.random.RandomState(0).randint(0, 256, half_b.shape).astype(np.uint8)
    fd_real = frechet_distance(*stats_a, *mean_cov(classifier.features(half_b)))
    fd_blur = frechet_distance(*stats_a, *mean_cov(classifier.features(blurred)))
    fd_noise = frechet_distance(*stats_a, *mean_cov(classifier.features(noise)))
    assert 0 < fd_real < fd_blur / 20 and fd_blur < fd_noise, (fd_real, fd_blur, fd_noise)


def test_training_is_deterministic(shapes):
    a = train_feature_classifier(shapes, steps=20, train_indices=TRAIN[:500], seed=4)
    b = train_feature_classifier(shapes, steps=20, train_indices=TRAIN[:500], seed=4)
    c = train_feature_classifier(shapes, steps=20, train_indices=TRAIN[:500], seed=5)
    for va, vb in zip(a.model.weights, b.model.weights):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
    assert not np.array_equal(a.model.weights[0].numpy(), c.model.weights[0].numpy())


def test_sources_arrays_floats_and_functions_agree(shapes, classifier):
    images = shapes.images(HELD_OUT[:300])
    as_float = images.astype(np.float32) / 127.5 - 1.0 + 0.001  # [-1, 1], rounded back to these pixels
    chunks = iter([as_float[:128], as_float[128:256], as_float[256:]])
    fd_uint8 = feature_frechet_distance(images, shapes, classifier, 300, seed=3)
    assert feature_frechet_distance(as_float, shapes, classifier, 300, seed=3) == fd_uint8
    from_function = feature_frechet_distance(lambda n: next(chunks), shapes, classifier, 300, seed=3)
    assert from_function == pytest.approx(fd_uint8, rel=1e-12)
    # The real side is min(num_images, N) distinct dataset images (drawn without replacement): a
    # source holding exactly a dataset's images, in another order, is at distance 0 from it.
    labels = shapes.labels[HELD_OUT[:300]]
    subset = ImageDataset(DatasetInfo("subset", "subset", 300, 32, 3, 4), labels, cache=images)
    shuffled = images[np.random.RandomState(0).permutation(300)]
    assert abs(feature_frechet_distance(shuffled, subset, classifier, 300, seed=3)) < 1e-6
    assert abs(feature_frechet_distance(np.concatenate([shuffled, images]), subset, classifier, 600)) < 1e-6
    kid = feature_kernel_distance(images, shapes, classifier, 300, seed=3, num_subsets=10)
    kid_noise = feature_kernel_distance(np.zeros_like(images), shapes, classifier, 300, seed=3, num_subsets=10)
    assert abs(kid) < kid_noise / 20


def test_generator_source_is_reproducible_and_conditional(shapes, classifier):
    cfg = GeneratorConfig(img_resolution=32, z_dim=8, w_dim=8, c_dim=4, channel_base=128, channel_max=16,
                          mapping=MappingConfig(num_layers=2))
    G = Generator(cfg)
    first, second = generator_source(G, shapes, seed=1), generator_source(G, shapes, seed=1)
    a = np.concatenate([first(5), first(3)])
    b = np.concatenate([second(5), second(3)])
    assert a.shape == (8, 32, 32, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(generator_source(G, shapes, seed=2)(5), a[:5])
    fd = feature_frechet_distance(generator_source(G, shapes, seed=1), shapes, classifier, 200)
    assert fd > feature_frechet_distance(shapes.images(HELD_OUT[:200]), shapes, classifier, 200)
    with pytest.raises(UserError, match="c_dim 3"):
        generator_source(Generator(dataclasses.replace(cfg, c_dim=3)), shapes)


def test_needs_class_labels(tmp_path):
    from PIL import Image

    (tmp_path / "u").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "u" / "a.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "u" / "b.png")
    with pytest.raises(UserError, match="needs class labels"):
        train_feature_classifier(open_dataset(str(tmp_path / "u")))


def test_accuracy_high_on_the_dataset_and_chance_on_noise(shapes, classifier):
    images, classes = shapes.images(HELD_OUT[:2000]), shapes.labels[HELD_OUT[:2000]].argmax(axis=1)
    probabilities = classifier.probabilities(images)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(probabilities.argmax(axis=1), classifier.predict(images))
    assert sample_accuracy(probabilities, classes) > 0.95  # conditional: the class asked for (0.97)
    # Unconditional: one class with confidence > 0.9; 0.81 of real images, 0.44 of blurred ones.
    blurred = np.rint(gaussian_filter(images.astype(np.float64), sigma=(0, 1.5, 1.5, 0))).astype(np.uint8)
    assert sample_accuracy(probabilities) > 0.75 > 0.5 > sample_accuracy(classifier.probabilities(blurred))
    # Noise asked to be of random classes: right by chance only, 1/4 within 3 binomial sigmas (0.029).
    # (Unconditionally, noise looks like a confident cross: that number needs images like the data.)
    rs = np.random.RandomState(0)
    noise = rs.randint(0, 256, images.shape).astype(np.uint8)
    assert abs(sample_accuracy(classifier.probabilities(noise), rs.randint(0, 4, 2000)) - 0.25) < 0.029
    # The definitions, on hand-made probabilities.
    p = np.array([[0.95, 0.05], [0.5, 0.5], [0.2, 0.8], [0.05, 0.95]])
    assert sample_accuracy(p, np.array([0, 0, 1, 0])) == 0.75 and sample_accuracy(p) == 0.5


class ClassImages:
    """A stand-in conditional generator: for the label of class k it returns a dataset image of
    class (k + shift) % 4, the same one every time."""

    z_dim, c_dim, img_resolution, img_channels = 8, 4, 32, 3

    def __init__(self, shapes, shift=0):
        first = [int(np.flatnonzero(shapes.labels.argmax(axis=1) == (k + shift) % 4)[0]) for k in range(4)]
        self.bank = tf.constant(shapes.images(first).astype(np.float32) / 127.5 - 1.0)

    def __call__(self, z, c, truncation_psi=1.0, noise_mode="random", noise_seed=None):
        return tf.gather(self.bank, tf.argmax(c, axis=1))


def test_generator_outputs_pair_each_image_with_its_class(shapes, classifier):
    features, probabilities, classes = generator_outputs(ClassImages(shapes), shapes, classifier, 250, seed=2)
    assert features.shape == (250, 64) and probabilities.shape == (250, 4) and classes.shape == (250,)
    # The classes are those of random dataset images, as generator_source draws them, and each
    # image shows the class it was asked for.
    rs = np.random.RandomState(2)
    rs.randn(100, 8)
    np.testing.assert_array_equal(classes[:100], shapes.labels[rs.randint(0, len(shapes), 100)].argmax(axis=1))
    assert sample_accuracy(probabilities, classes) == 1.0
    np.testing.assert_allclose(features, classifier.features(np.rint((ClassImages(shapes)(
        None, tf.one_hot(classes, 4)).numpy() + 1) * 127.5).astype(np.uint8)), atol=1e-6)
    # A generator that draws the next class is never right.
    _, probabilities, classes = generator_outputs(ClassImages(shapes, shift=1), shapes, classifier, 250, seed=2)
    assert sample_accuracy(probabilities, classes) == 0.0


def test_acc_clf_in_the_metric_suite_reads_the_images_fd_clf_reads(shapes, classifier):
    """acc<N>k_clf beside fd<N>k_clf: the stand-in that draws the class asked for scores 1, the one
    that draws the next class 0; the distance is of the same images as generator_outputs gives."""
    from tf_stylegan2.metrics.suite import FeatureNetworks, MetricOptions, MetricSpec, evaluate

    opts = MetricOptions(shapes, FeatureNetworks(classifier=classifier), cache_dir=None, seed=2)
    specs = [MetricSpec("fd250_clf", "fd_clf", 250, 250), MetricSpec("acc250_clf", "acc_clf", 250)]
    right, wrong = (evaluate(ClassImages(shapes, shift), specs, opts) for shift in (0, 1))
    assert [r["results"] for r in right][1] == {"acc250_clf": 1.0}
    assert [r["results"] for r in wrong][1] == {"acc250_clf": 0.0}
    features, _, _ = generator_outputs(ClassImages(shapes), shapes, classifier, 250, seed=2)
    real = classifier.features(shapes.images(np.sort(np.random.RandomState(2).choice(len(shapes), 250, replace=False))))
    assert right[0]["results"]["fd250_clf"] == pytest.approx(
        frechet_distance(*mean_cov(features), *mean_cov(real)), rel=1e-9)


def test_full_clf_variants_read_every_image_of_a_small_dataset(shapes, classifier):
    """fd<N>k_clf needs N thousand reals; fd<N>k_full_clf takes a 300-image dataset whole, and a
    generator that replays exactly those images is at distance 0 from it."""
    from tf_stylegan2.metrics.suite import FeatureNetworks, MetricOptions, evaluate

    images = shapes.images(HELD_OUT[:300])
    small = ImageDataset(DatasetInfo("small", "small", 300, 32, 3, 4), shapes.labels[HELD_OUT[:300]], cache=images)
    opts = MetricOptions(small, FeatureNetworks(classifier=classifier), cache_dir=None, log=lambda line: None)
    with pytest.raises(UserError, match=r"fd1k_clf needs 1000 real images, but dataset small has 300 images \(the "
                                        r"_full variants"):
        evaluate(ClassImages(shapes), ["fd1k_clf"], opts)

    class Replay:  # a generator whose 1000 images are the 300 real ones, in turn (traced once: a counter variable)
        z_dim, c_dim, img_resolution, img_channels = 8, 4, 32, 3
        bank, drawn = tf.constant(images.astype(np.float32) / 127.5 - 1.0), tf.Variable(0)

        def __call__(self, z, c, truncation_psi=1.0, noise_mode="random", noise_seed=None):
            n = tf.shape(z)[0]
            start = self.drawn.assign_add(n) - n
            return tf.gather(self.bank, tf.range(start, start + n) % 300)

    record = evaluate(Replay(), ["fd1k_full_clf"], opts)[0]
    replayed = classifier.features(images[np.arange(1000) % 300])
    expected = frechet_distance(*mean_cov(replayed), *mean_cov(classifier.features(images)))
    assert record["results"]["fd1k_full_clf"] == pytest.approx(expected, rel=1e-6)
    assert expected < 0.5  # the same 300 images, a third of them once more often than the rest
