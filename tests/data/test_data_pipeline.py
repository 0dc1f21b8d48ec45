"""tf_stylegan2.data: pixel values, labels, folder == zip == streamed, determinism, resume, mirror."""

import hashlib

import numpy as np
import tensorflow as tf

from tf_stylegan2.data import dataset_grid, open_dataset, sample_order


def take(ds, num_batches):
    it = iter(ds)
    batches = [next(it) for _ in range(num_batches)]
    return np.concatenate([b[0].numpy() for b in batches]), np.concatenate([b[1].numpy() for b in batches])


def order(n, seed, positions, shuffle=True):
    idx, flips = sample_order(tf.constant(positions, tf.int64), n, seed, shuffle)
    return idx.numpy(), flips.numpy()


def test_folder_zip_and_streamed_give_identical_data(labelled_dataset):
    folder, images, classes = labelled_dataset(as_zip=False)
    zipped, _, _ = labelled_dataset(as_zip=True)
    variants = [open_dataset(folder), open_dataset(zipped), open_dataset(folder, max_cache_bytes=0),
                open_dataset(zipped, max_cache_bytes=0)]
    assert [d.in_memory for d in variants] == [True, True, False, False]
    for d in variants:
        assert (d.info.num_images, d.info.resolution, d.info.channels, d.info.c_dim) == (10, 8, 3, 4)
        np.testing.assert_array_equal(d.images(np.arange(10)), images)  # sorted names: a/img00 ... b/img09
        np.testing.assert_array_equal(d.labels, np.eye(4, dtype=np.float32)[classes])
    assert variants[0].info.name == "ds" and variants[1].info.name == "ds"
    streams = [take(d.tf_dataset(4, use_labels=True, mirror=True, seed=3), 6) for d in variants]
    for x, y in streams[1:]:
        np.testing.assert_array_equal(x, streams[0][0])
        np.testing.assert_array_equal(y, streams[0][1])


def test_values_labels_and_unshuffled_order(labelled_dataset):
    path, images, classes = labelled_dataset()
    x, y = take(open_dataset(path).tf_dataset(5, use_labels=True, mirror=False, seed=0, shuffle=False), 3)
    assert x.dtype == np.float32 and x.shape == (15, 8, 8, 3) and y.shape == (15, 4)
    expected = np.concatenate([images, images[:5]]).astype(np.float32) / 127.5 - 1.0  # epoch 2 starts at 10
    np.testing.assert_array_equal(x, expected)
    assert x.min() >= -1.0 and x.max() <= 1.0
    np.testing.assert_array_equal(y.argmax(axis=1), np.concatenate([classes, classes[:5]]))
    np.testing.assert_array_equal(y.sum(axis=1), np.ones(15))
    _, y0 = take(open_dataset(path).tf_dataset(5, use_labels=False, mirror=False, seed=0), 1)
    assert y0.shape == (5, 0)


def test_resume_reproduces_the_tail_of_the_sequence(labelled_dataset):
    dataset = open_dataset(labelled_dataset()[0])
    full_x, full_y = take(dataset.tf_dataset(4, use_labels=True, mirror=True, seed=7), 8)  # 32 images, 3+ epochs
    for start in (1, 7, 10, 13):
        x, y = take(dataset.tf_dataset(4, use_labels=True, mirror=True, seed=7, start_image=start), 4)
        np.testing.assert_array_equal(x, full_x[start : start + 16])
        np.testing.assert_array_equal(y, full_y[start : start + 16])
    # The stream is exactly the images at sample_order's indices, x-flipped where it says so.
    idx, flips = order(10, 7, np.arange(32))
    expected = dataset.images(idx)
    expected[flips] = expected[flips][:, :, ::-1]
    np.testing.assert_array_equal(full_x, expected.astype(np.float32) / 127.5 - 1.0)


def test_every_epoch_is_a_new_permutation():
    n = 37
    idx, _ = order(n, 5, np.arange(4 * n))
    epochs = idx.reshape(4, n)
    for e in epochs:
        np.testing.assert_array_equal(np.sort(e), np.arange(n))
    assert len({tuple(e) for e in epochs}) == 4  # reshuffled each epoch
    assert not np.array_equal(order(n, 6, np.arange(n))[0], epochs[0])  # another seed, another order
    np.testing.assert_array_equal(order(n, 5, np.arange(2 * n), shuffle=False)[0], np.tile(np.arange(n), 2))
    # A pure function of (seed, position): positions asked for out of order give the same answers.
    positions = np.array([100, 3, 77, 3])
    np.testing.assert_array_equal(order(n, 5, positions)[0], idx[positions])


def test_mirror_flips_exactly_half_of_each_epoch(labelled_dataset):
    dataset = open_dataset(labelled_dataset()[0])
    plain, _ = take(dataset.tf_dataset(5, use_labels=False, mirror=False, seed=2), 4)
    mirrored, _ = take(dataset.tf_dataset(5, use_labels=False, mirror=True, seed=2), 4)
    _, flips = order(10, 2, np.arange(20))
    assert flips.reshape(2, 10).sum(axis=1).tolist() == [5, 5]
    for p, m, f in zip(plain, mirrored, flips):
        np.testing.assert_array_equal(m, p[:, ::-1] if f else p)
        assert not np.array_equal(p[:, ::-1], p)  # the test images are not symmetric


def test_grayscale_dataset(tmp_path, write_files, random_images):
    images = random_images(3, res=4, channels=1)
    path = write_files(str(tmp_path / "gray"), {f"{i}.png": images[i, ..., 0] for i in range(3)})
    dataset = open_dataset(path)
    assert (dataset.info.channels, dataset.info.resolution, dataset.info.c_dim) == (1, 4, 0)
    x, _ = take(dataset.tf_dataset(3, use_labels=False, mirror=False, seed=0, shuffle=False), 1)
    np.testing.assert_array_equal(x, images.astype(np.float32) / 127.5 - 1.0)


def test_vector_labels_pass_through(tmp_path, write_files, random_images):
    images = random_images(2, res=4)
    labels = {"labels": [["0.png", [0.5, -1]], ["1.png", [2, 3]]]}
    files = {"0.png": images[0], "1.png": images[1], "dataset.json": labels}
    dataset = open_dataset(write_files(str(tmp_path / "vec"), files))
    np.testing.assert_array_equal(dataset.labels, [[0.5, -1.0], [2.0, 3.0]])


def sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def test_builtin_dataset_and_its_stream_are_pinned():
    """Checksums written once (tf-stylegan2 at 5d8b15f: numpy 2, TF 2.21): they change when the
    rendering (numpy's legacy RandomState stream, the float maths of datasets/shapes.py) or the
    stream's order (RandomIndexShuffle, mirroring) drifts, which would silently change every run,
    metric and resumed training on the builtin datasets."""
    dataset = open_dataset("builtin:shapes32")
    assert sha256(dataset.images(np.arange(10000))) == (
        "3570de920fe024172bb0f2a0a51988cb60025be2dbf46521bf382c8d7a90fa31")
    assert sha256(dataset.labels) == "7e90974c2d4da40ca39c07bc4beca2c72e8cdbc22c723b9e10c4101a58bdcf27"
    x, y = next(iter(dataset.tf_dataset(16, use_labels=True, mirror=True, seed=0)))
    assert sha256(x.numpy()) == "b2a9c4688c610b29baa58d013d1ff043532c7e4df314f25eaf0ab67046ddae72"
    assert sha256(y.numpy()) == "d620e9e271de4af5ec26d7c2c4449fa43acd7bbd67e274051c71d6da73ff946b"


def test_builtin_dataset_and_its_grid(tmp_path):
    from tf_stylegan2.datasets import shapes
    from tf_stylegan2.images import save_png

    dataset = open_dataset("builtin:shapes32")
    info = dataset.info
    assert (info.name, info.num_images, info.resolution, info.channels, info.c_dim) == ("shapes32", 10000, 32, 3, 4)
    assert dataset.labels.sum(axis=0).tolist() == [2500.0] * 4
    scenes = shapes.draw_scenes(10000, seed=0)
    labels = scenes.labels
    np.testing.assert_array_equal(dataset.labels.argmax(axis=1), labels)
    # Analytic rendering: at 64x64, box-downsampled, the same scenes look the same as at 32x32.
    big = shapes.render(shapes.Scenes(*(a[:200] for a in scenes)), 64).astype(np.float64)
    again = dataset.images(np.arange(10000))
    small = again[:200].astype(np.float64)
    assert np.abs(big.reshape(200, 32, 2, 32, 2, 3).mean(axis=(2, 4)) - small).mean() < 3.0
    # The sample grid: one row per class, the first 8 images of each.
    path = str(tmp_path / "grid.png")
    save_png(path, dataset_grid(dataset))
    from PIL import Image

    picture = np.asarray(Image.open(path))
    assert picture.shape == (4 * 32, 8 * 32, 3)
    for k in range(4):
        first = np.flatnonzero(labels == k)[:8]
        row = picture[k * 32 : (k + 1) * 32].reshape(32, 8, 32, 3).transpose(1, 0, 2, 3)
        np.testing.assert_array_equal(row, again[first])


def test_builtin_shapes_have_the_drawn_geometry():
    """Each class covers the area of its geometry: circle pi r^2, square (1.6 r)^2, triangle of
    circumradius 1.2 r, cross of two 2r x 0.6r bars; and sits at its drawn centre."""
    from tf_stylegan2.datasets import shapes

    res = 64
    scenes = shapes.draw_scenes(400, seed=3)
    images = shapes.render(scenes, res)
    # Shapes have HSV value >= 0.8, backgrounds <= 0.45: threshold the brightest channel in between.
    inside = images.max(axis=-1) > 160
    area = inside.sum(axis=(1, 2)) / (scenes.radius * res) ** 2
    expected = [np.pi, 1.6**2, 3 * np.sqrt(3) / 4 * 1.2**2, 2 * 2 * 0.6 - 0.6**2]
    for k, value in enumerate(expected):
        assert abs(area[scenes.labels == k].mean() / value - 1.0) < 0.04, (shapes.CLASS_NAMES[k], value)
    ys, xs = np.meshgrid(np.arange(res) + 0.5, np.arange(res) + 0.5, indexing="ij")
    circles = np.flatnonzero(scenes.labels == 0)
    cx = (inside[circles] * xs).sum(axis=(1, 2)) / inside[circles].sum(axis=(1, 2)) / res
    cy = (inside[circles] * ys).sum(axis=(1, 2)) / inside[circles].sum(axis=(1, 2)) / res
    np.testing.assert_allclose(cx, scenes.cx[circles], atol=0.01)
    np.testing.assert_allclose(cy, scenes.cy[circles], atol=0.01)


DISTRIBUTED = """
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tf_stylegan2.data import open_dataset
dataset = open_dataset("builtin:shapes16")
ds = dataset.tf_dataset(8, use_labels=True, mirror=True, seed=5, start_image=3)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
it = iter(strategy.experimental_distribute_dataset(ds))
plain = iter(ds)
for _ in range(3):
    x, y = next(it)
    gx, gy = next(plain)
    parts = strategy.experimental_local_results(x)
    assert [p.shape[0] for p in parts] == [4, 4]
    np.testing.assert_array_equal(np.concatenate([p.numpy() for p in parts]), gx.numpy())
    np.testing.assert_array_equal(np.concatenate([p.numpy() for p in strategy.experimental_local_results(y)]), gy.numpy())
print("ok")
"""


def test_global_batches_split_across_replicas_in_order():
    """A MirroredStrategy on two logical CPUs (needs a fresh process) gets the same global batches."""
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run([sys.executable, "-c", DISTRIBUTED], cwd=root, capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=root), timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
