"""Streamed feature statistics, the real images they see, the cache of real statistics and its key,
and generated images that do not depend on batching."""

import json
import os
import zipfile

import numpy as np
import pytest
import tensorflow as tf

from tf_stylegan2.data import open_dataset
from tf_stylegan2.metrics import stats
from tf_stylegan2.metrics.stats import FeatureDetector, FeatureStats, dataset_stats, generator_stats
from metric_helpers import StandInInception, random_dataset, tiny_generator

PIXELS = FeatureDetector("pixels", lambda x: tf.reshape(tf.cast(x, tf.float32), [tf.shape(x)[0], -1]),
                         {"sha256": "a" * 64})


def test_streamed_mean_and_covariance_equal_numpy_in_float64():
    x = np.random.RandomState(0).randn(1000, 7).astype(np.float32) * 3 + 100  # a large mean: float64 sums needed
    s = FeatureStats(capture_all=True, capture_mean_cov=True, max_items=950)
    for start in range(0, 1000, 64):
        s.append(x[start : start + 64])
    assert s.num_items == 950 and s.is_full()
    mean, cov = s.mean_cov()
    ref = x[:950].astype(np.float64)
    np.testing.assert_allclose(mean, ref.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(ref, rowvar=False, bias=True), rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(s.features(), x[:950])
    with pytest.raises(ValueError, match="not captured"):
        FeatureStats(capture_mean_cov=True).features()


def test_real_images_in_dataset_order_then_their_flips(tmp_path):
    from tests_data_helpers import write_zip

    ds = random_dataset(10)
    got = dataset_stats(ds, PIXELS, capture_all=True, batch_size=3).features()
    np.testing.assert_array_equal(got, ds.images(range(10)).reshape(10, -1))
    streamed = open_dataset(write_zip(tmp_path / "data", ds.images(range(10))), max_cache_bytes=0)
    assert not streamed.in_memory  # decoded by a thread pool, a round ahead
    np.testing.assert_array_equal(dataset_stats(streamed, PIXELS, capture_all=True, batch_size=4).features(), got)
    mirrored = dataset_stats(ds, PIXELS, max_items=14, mirror=True, capture_all=True, batch_size=4).features()
    expected = np.concatenate([ds.images(range(10)), ds.images(range(4))[:, :, ::-1]])
    np.testing.assert_array_equal(mirrored, expected.reshape(14, -1))
    gray = random_dataset(5, channels=1)
    tiled = dataset_stats(gray, PIXELS, capture_all=True).features().reshape(5, 8, 8, 3)
    np.testing.assert_array_equal(tiled, np.tile(gray.images(range(5)), [1, 1, 1, 3]))


def test_cache_hit_reads_no_real_image_and_corrupt_files_are_recomputed(tmp_path, monkeypatch):
    ds = open_dataset("builtin:shapes16")
    inception = StandInInception()
    detector = FeatureDetector("inception-pool3", lambda x: inception(x)["pool3"], inception.identity)
    kw = dict(max_items=300, capture_mean_cov=True, cache_dir=str(tmp_path), log=lambda line: logged.append(line))
    logged = []
    first = dataset_stats(ds, detector, **kw)
    files = os.listdir(tmp_path)
    assert len(files) == 1 and files[0].startswith("shapes16-inception-pool3-") and files[0].endswith(".npz")

    def no_images(*_):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(type(ds), "images", no_images)
    second = dataset_stats(ds, detector, **kw)
    for a, b in zip(first.mean_cov(), second.mean_cov()):
        np.testing.assert_array_equal(a, b)
    # Asking for all features too is not answered by a file that holds only the sums.
    with pytest.raises(AssertionError, match="cache was not used"):
        dataset_stats(ds, detector, **{**kw, "capture_all": True})
    monkeypatch.undo()

    path = os.path.join(tmp_path, files[0])
    for damage in (lambda data: data[: len(data) // 2], lambda data: b"garbage"):
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(damage(data))
        again = dataset_stats(ds, detector, **kw)
        np.testing.assert_allclose(again.mean_cov()[1], first.mean_cov()[1], rtol=1e-12)
        assert "ignoring the statistics cache" in logged[-2]
    # A file renamed to another key's name is not trusted either.
    other = dataset_stats(ds, detector, **{**kw, "max_items": 200})
    os.replace(path, path + ".bak")
    other_file = [f for f in os.listdir(tmp_path) if f.endswith(".npz")][0]
    os.replace(os.path.join(tmp_path, other_file), path)
    os.replace(path + ".bak", os.path.join(tmp_path, other_file))
    again = dataset_stats(ds, detector, **kw)
    assert again.num_items == 300 and other.num_items == 200
    assert "written for other statistics" in logged[-2]


def test_cache_key_follows_content_weights_and_options(tmp_path):
    from tests_data_helpers import write_zip

    images = random_dataset(6).images(range(6))
    a = open_dataset(write_zip(tmp_path / "a", images))
    same_content = open_dataset(write_zip(tmp_path / "b", images))
    changed = open_dataset(write_zip(tmp_path / "c", np.concatenate([images[:5], 255 - images[5:]])))
    key = lambda ds, det=PIXELS, n=6, mirror=False: stats.cache_key(ds, det, n, mirror)  # noqa: E731
    assert key(a) == key(same_content)  # names and CRCs, not the file's name or time
    assert key(a) != key(changed)
    assert key(a) != key(a, FeatureDetector("pixels", PIXELS.fn, {"sha256": "b" * 64}))
    assert key(a) != key(a, n=5) and key(a) != key(a, mirror=True)
    # Folders hash their files' bytes.
    folder = tmp_path / "folder"
    folder.mkdir()
    with zipfile.ZipFile(tmp_path / "a.zip") as z:
        z.extractall(folder)
    f1 = stats.dataset_fingerprint(str(folder))
    with open(folder / "img00005.png", "wb") as f:
        with zipfile.ZipFile(tmp_path / "c.zip") as z:
            f.write(z.read("img00005.png"))
    os.utime(folder, ns=(1, 1))  # a new stamp for the per-process memo
    assert stats.dataset_fingerprint(str(folder)) != f1
    assert json.dumps(key(a))  # JSON-able: it is written into the file


def test_generated_images_do_not_depend_on_batching():
    G = tiny_generator()
    kw = dict(num_items=37, capture_all=True, seed=3)
    ref = generator_stats(G, PIXELS, batch_size=4, **kw).features()
    assert ref.shape == (37, 8 * 8 * 3)
    for batch_size in (8, 20, 64):
        np.testing.assert_array_equal(generator_stats(G, PIXELS, batch_size=batch_size, **kw).features(), ref)
    assert not np.array_equal(generator_stats(G, PIXELS, batch_size=8, **{**kw, "seed": 4}).features(), ref)
    # NVIDIA's uint8 rule: clip(x * 127.5 + 128, 0, 255), truncated.
    z, _, noise = stats.latent_groups(G, None, 3, range(1), 4)
    img = G(tf.constant(z[0]), noise_mode="random", noise_seed=tf.constant(noise[0])).numpy()
    expected = np.clip(img.astype(np.float64) * 127.5 + 128, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(ref[:4], expected.reshape(4, -1))

