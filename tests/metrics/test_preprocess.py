"""NVIDIA's pixel conventions: the uint8 rule (ties, clipping), TF1's bilinear resize against a
numpy implementation of its definition, the networks' input normalisations."""

import numpy as np
import pytest
import tensorflow as tf

import numpy_ref
from tf_stylegan2.metrics import preprocess


def exact_ties():
    """float32 images x for which x * 127.5 + 128 is exactly an integer in float32: the values
    half-way between two uint8 levels of x * 127.5 + 127.5, where truncation and rint differ."""
    xs, levels = [], []
    for k in range(1, 256):
        x = np.float32((k - 128) / 127.5)
        for cand in (np.nextafter(x, np.float32(-2)), x, np.nextafter(x, np.float32(2))):
            y = cand * np.float32(127.5) + np.float32(128)
            if y == np.round(y):
                xs.append(cand)
                levels.append(int(y))
                break
    return np.array(xs, np.float32), np.array(levels)


def test_uint8_rule_rounds_ties_up_and_clips():
    xs, levels = exact_ties()
    assert len(xs) > 100  # most levels have an exact tie in float32
    got = preprocess.float_to_uint8(xs).numpy()
    # NVIDIA's rule: clip(x * 127.5 + 128) truncated, i.e. the tie goes to the upper level ...
    np.testing.assert_array_equal(got, np.minimum(levels, 255))
    # ... where rint of x * 127.5 + 127.5 would round half to even: they differ on odd levels.
    rint = np.rint(xs.astype(np.float64) * 127.5 + 127.5)
    assert np.sum(rint != got) > 50
    # The ends: -1 -> 0.5 -> 0, 1 -> 255.5 -> 255, outside [-1, 1] clipped; between levels down.
    edge = np.array([-1.0, 1.0, -3.0, 2.5, 0.0, 0.5, -0.5, 0.999], np.float32)
    np.testing.assert_array_equal(preprocess.float_to_uint8(edge).numpy(), [0, 255, 0, 255, 128, 191, 64, 255])


def test_uint8_rule_round_trips_dataset_levels():
    # A uint8 level k shown as k / 127.5 - 1 (the dataset convention) comes back as k.
    k = np.arange(256)
    x = (k / 127.5 - 1).astype(np.float32)
    np.testing.assert_array_equal(preprocess.float_to_uint8(x).numpy(), k)


@pytest.mark.parametrize("shape,size", [((2, 37, 53, 3), (299, 299)), ((1, 320, 310, 1), (299, 299)),
                                        ((2, 40, 30, 3), (224, 224)), ((1, 7, 300, 2), (5, 299))])
def test_resize_matches_tf1_definition(shape, size):
    x = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    got = preprocess.resize_bilinear_tf1(x, size).numpy()
    assert got.dtype == np.float32 and got.shape == (shape[0], *size, shape[3])
    np.testing.assert_allclose(got, numpy_ref.resize_bilinear_tf1(x, size), rtol=0, atol=1e-4)
    # The half-pixel-centre rule of tf.image.resize is a different resampling.
    half = tf.image.resize(tf.cast(x, tf.float32), size, method="bilinear").numpy()
    assert np.max(np.abs(half - got)) > 10


def test_resize_to_own_size_is_identity():
    x = np.random.default_rng(1).integers(0, 256, (2, 299, 299, 3), dtype=np.uint8)
    np.testing.assert_array_equal(preprocess.resize_bilinear_tf1(x, (299, 299)).numpy(), x.astype(np.float32))
    np.testing.assert_array_equal(preprocess.inception_input(x).numpy(), (x.astype(np.float32) - 128) / 128)


def test_vgg_normalisation_equals_lpips_scaling():
    """torchvision's ImageNet normalisation of 0..255 images is lpips' ScalingLayer of [-1, 1]."""
    x = np.random.default_rng(2).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    a = preprocess.vgg16_input(x).numpy()
    b = preprocess.lpips_input(x.astype(np.float32) / 127.5 - 1).numpy()
    np.testing.assert_allclose(a, b, atol=2e-5)
    mean, std = np.array(preprocess.IMAGENET_MEAN), np.array(preprocess.IMAGENET_STD)
    np.testing.assert_allclose(a, (x / 255.0 - mean) / std, atol=2e-5)


def test_to_rgb():
    gray = np.random.default_rng(3).integers(0, 256, (2, 5, 4, 1), dtype=np.uint8)
    np.testing.assert_array_equal(preprocess.to_rgb(gray).numpy(), np.repeat(gray, 3, axis=-1))
    rgb = np.repeat(gray, 3, axis=-1)
    np.testing.assert_array_equal(preprocess.to_rgb(rgb).numpy(), rgb)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        preprocess.to_rgb(gray[..., [0, 0]])
    with pytest.raises(ValueError, match="NHWC"):
        preprocess.to_rgb(gray[0])
