"""Feature statistics of real and generated images, streamed, as stylegan2-ada's metric_utils.

A *feature detector* is a TF-traceable function from uint8 NHWC images to ``[N, D]`` float32
features, with the identity of its weights file. :func:`dataset_stats` and :func:`generator_stats`
run one over images in batches, on every replica of a strategy (:mod:`.replicas`), and accumulate
:class:`FeatureStats`: the mean and covariance in float64 (FID), and all features only where a
metric needs them (KID, precision/recall, IS).

Real images are taken in dataset order (sorted file names, as NVIDIA's dataset classes), the
first ``max_items`` of them; with ``mirror`` the dataset counts twice, every image followed after
the last one by its x-flip (NVIDIA's ``xflip=True``). Their statistics are cached in a file keyed
by the dataset's content, the detector's weights (sha256) and these options, so a second
evaluation reads no real image.

Generated images come in groups of ``batch_gen`` (NVIDIA's ``batch_gen``): group ``g`` draws its
latents, labels and synthesis noise from a generator seeded by ``(seed, g)`` alone, so the images
do not depend on the batch size or on the number of replicas.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf

from tf_stylegan2 import datasets
from tf_stylegan2.data import ImageDataset
from tf_stylegan2.data.files import is_image_name
from tf_stylegan2.fileio import UserError, atomic_path
from tf_stylegan2.metrics import preprocess
from tf_stylegan2.metrics.replicas import ReplicaMap, rounds
from tf_stylegan2.progress import Progress

DEFAULT_CACHE_DIR = os.path.join("~", ".cache", "tf_stylegan2", "metrics")
CACHE_VERSION = 1  # bump when the cached values change meaning
DEFAULT_BATCH_SIZE = 64  # images per replica per detector call (NVIDIA's batch_size)
DEFAULT_BATCH_GEN = 4  # images per generator call and per group of random numbers (NVIDIA's batch_gen)

Log = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class FeatureDetector:
    """A feature network as the metrics see it.

    Args:
      name: what the features are, e.g. 'inception-pool3'; part of cache file names.
      fn: uint8 images ``[N, H, W, 3]`` (tf.Tensor) -> float32 ``[N, D]``; traceable by tf.function.
      identity: the weights file: ``network``, ``file``, ``sha256``, ``format`` (recorded with every
        result; ``sha256`` keys the statistics cache, which is off without it).
    """

    name: str
    fn: Callable[[tf.Tensor], tf.Tensor]
    identity: Mapping[str, str]


class FeatureStats:
    """Streamed features of up to ``max_items`` images: float64 sums for the mean and covariance,
    and (``capture_all``) every feature row as float32."""

    def __init__(self, capture_all: bool = False, capture_mean_cov: bool = False, max_items: Optional[int] = None):
        self.capture_all, self.capture_mean_cov, self.max_items = capture_all, capture_mean_cov, max_items
        self.num_items = 0
        self.num_features: Optional[int] = None
        self._all: list = []
        self._sum: Optional[np.ndarray] = None
        self._outer: Optional[np.ndarray] = None

    def is_full(self) -> bool:
        return self.max_items is not None and self.num_items >= self.max_items

    def append(self, x: np.ndarray) -> None:
        """Adds ``[n, D]`` features; rows beyond ``max_items`` are dropped."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"features must be [N, D], got shape {x.shape}")
        if self.max_items is not None:
            x = x[: max(self.max_items - self.num_items, 0)]
        if self.num_features is None:
            self.num_features = x.shape[1]
            self._sum = np.zeros([x.shape[1]], np.float64)
            self._outer = np.zeros([x.shape[1], x.shape[1]], np.float64)
        elif x.shape[1] != self.num_features:
            raise ValueError(f"features of width {x.shape[1]} after {self.num_features}")
        self.num_items += x.shape[0]
        if self.capture_all:
            self._all.append(x)
        if self.capture_mean_cov:
            x64 = x.astype(np.float64)
            self._sum += x64.sum(axis=0)
            self._outer += x64.T @ x64

    def mean_cov(self) -> Tuple[np.ndarray, np.ndarray]:
        """float64 mean ``[D]`` and maximum-likelihood covariance ``[D, D]`` (divided by N)."""
        if not self.capture_mean_cov or self.num_items < 2:
            raise ValueError(f"no mean/covariance captured over >= 2 items ({self.num_items} items)")
        mean = self._sum / self.num_items
        return mean, self._outer / self.num_items - np.outer(mean, mean)

    def features(self) -> np.ndarray:
        """float32 ``[N, D]``, every captured row in order."""
        if not self.capture_all:
            raise ValueError("features were not captured (capture_all=False)")
        if not self._all:
            return np.zeros([0, self.num_features or 0], np.float32)
        if len(self._all) > 1:
            self._all = [np.concatenate(self._all)]
        return self._all[0]

    # The cache file: plain arrays (np.load with allow_pickle=False), never a pickle.
    def arrays(self) -> Dict[str, np.ndarray]:
        out = {"num_items": np.int64(self.num_items)}
        if self.capture_mean_cov:
            out.update(sum=self._sum, outer=self._outer)
        if self.capture_all:
            out["features"] = self.features()
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> "FeatureStats":
        stats = cls(capture_all="features" in arrays, capture_mean_cov="sum" in arrays)
        stats.num_items = int(arrays["num_items"])
        if stats.capture_mean_cov:
            stats._sum, stats._outer = np.asarray(arrays["sum"], np.float64), np.asarray(arrays["outer"], np.float64)
            stats.num_features = stats._sum.shape[0]
            if stats._outer.shape != (stats.num_features,) * 2:
                raise ValueError(f"covariance sums of shape {stats._outer.shape} for {stats.num_features} features")
        if stats.capture_all:
            features = np.asarray(arrays["features"], np.float32)
            if features.ndim != 2 or features.shape[0] != stats.num_items:
                raise ValueError(f"features of shape {features.shape} for {stats.num_items} items")
            if stats.num_features not in (None, features.shape[1]):
                raise ValueError("features and sums of different widths")
            stats._all, stats.num_features = [features], features.shape[1]
        return stats


# ---- real images ------------------------------------------------------------------------------


def num_real_items(dataset: ImageDataset, max_items: Optional[int], mirror: bool) -> int:
    """How many real images a metric with ``max_items`` sees (``mirror`` doubles the dataset)."""
    available = len(dataset) * (2 if mirror else 1)
    return available if max_items is None else min(available, max_items)


def _real_batch(dataset: ImageDataset, start: int, stop: int, size: int, pool: ThreadPoolExecutor) -> np.ndarray:
    """Images ``start..stop-1`` of the (possibly mirrored) dataset sequence, padded to ``size``
    with repeats of the last (so every call has one shape and traces once; the caller drops them).
    Images not held in memory are decoded by ``pool`` (Pillow decodes without the GIL)."""
    n = len(dataset)
    index = np.minimum(np.arange(start, start + size), stop - 1)
    if dataset.in_memory:
        images = dataset.images(index % n)
    else:
        images = np.concatenate(list(pool.map(lambda i: dataset.images([i]), index % n)))
    flipped = index >= n
    if flipped.any():
        images[flipped] = images[flipped][:, :, ::-1]
    return images


def dataset_stats(
    dataset: ImageDataset,
    detector: FeatureDetector,
    *,
    max_items: Optional[int] = None,
    mirror: bool = False,
    capture_all: bool = False,
    capture_mean_cov: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    strategy: Optional[tf.distribute.Strategy] = None,
    cache_dir: Optional[str] = None,
    log: Optional[Log] = None,
) -> FeatureStats:
    """Features of the first ``max_items`` images of ``dataset`` (all when None).

    With ``cache_dir`` the statistics are read from / written to a file there (see
    :func:`cache_key`); a file that cannot be read or does not match its key is recomputed. Only
    datasets with a content to fingerprint (a folder, zip or builtin name) are cached.
    """
    num_items = num_real_items(dataset, max_items, mirror)
    cache_file = None
    path = dataset.info.path
    on_disk = path.startswith(datasets.PREFIX) or os.path.exists(path)  # not so: a dataset built in memory
    if cache_dir and detector.identity.get("sha256") and on_disk:
        key = cache_key(dataset, detector, num_items, mirror)
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
        cache_file = os.path.join(os.path.expanduser(cache_dir), f"{dataset.info.name}-{detector.name}-{digest}.npz")
        cached = _read_cache(cache_file, key, log)
        if cached is not None and (cached.capture_all or not capture_all) and (cached.capture_mean_cov or
                                                                               not capture_mean_cov):
            return cached
    stats = FeatureStats(capture_all=capture_all, capture_mean_cov=capture_mean_cov or cache_file is not None,
                         max_items=num_items)
    replicas = ReplicaMap(lambda images: detector.fn(preprocess.to_rgb(images)), strategy)
    progress = Progress(f"{detector.name} of {dataset.info.name}", num_items, log=log)
    num_batches = -(-num_items // batch_size)

    def inputs(batches):
        return [(_real_batch(dataset, b * batch_size, min((b + 1) * batch_size, num_items), batch_size, pool),)
                for b in batches]

    # The next round's images are read while the detector runs on this round's.
    all_rounds = rounds(num_batches, replicas.num_replicas)
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool, ThreadPoolExecutor(1) as reader:
        pending = reader.submit(inputs, all_rounds[0]) if all_rounds else None
        for k in range(len(all_rounds)):
            current = pending.result()
            if k + 1 < len(all_rounds):
                pending = reader.submit(inputs, all_rounds[k + 1])
            for features in replicas(current):
                stats.append(features)
            progress.update(stats.num_items)
    if cache_file is not None:
        _write_cache(cache_file, key, stats)
    return stats


def cache_key(dataset: ImageDataset, detector: FeatureDetector, num_items: int, mirror: bool) -> Dict[str, Any]:
    """What real statistics depend on: the dataset's content, the detector and its weights, which
    images (how many, mirrored or not), and the version of this computation."""
    return {
        "dataset": dataset_fingerprint(dataset.info.path),
        "resolution": dataset.info.resolution,
        "channels": dataset.info.channels,
        "detector": detector.name,
        "sha256": detector.identity["sha256"],
        "num_items": num_items,
        "mirror": bool(mirror),
        "version": CACHE_VERSION,
    }


@functools.lru_cache(maxsize=16)
def _fingerprint(path: str, stamp: Tuple) -> str:
    digest = hashlib.sha256()
    if path.startswith(datasets.PREFIX):
        # Rendered by code: hash the pixels themselves (a change of the renderer changes the key).
        images = datasets.load_builtin(path[len(datasets.PREFIX):]).images
        digest.update(f"{path} {images.shape}".encode())
        digest.update(np.ascontiguousarray(images).data)
    elif os.path.isdir(path):
        for root, _, files in sorted(os.walk(path)):
            for name in sorted(files):
                rel = os.path.relpath(os.path.join(root, name), path).replace(os.sep, "/")
                if is_image_name(rel):
                    with open(os.path.join(root, name), "rb") as f:
                        digest.update(f"{rel} {hashlib.sha256(f.read()).hexdigest()}\n".encode())
    else:
        # A zip names every member's CRC-32 in its directory: content-derived, and read in milliseconds.
        with zipfile.ZipFile(path) as z:
            for info in sorted(z.infolist(), key=lambda i: i.filename):
                if not info.filename.endswith("/") and is_image_name(info.filename):
                    digest.update(f"{info.filename} {info.CRC:08x} {info.file_size}\n".encode())
    return digest.hexdigest()


def dataset_fingerprint(path: str) -> str:
    """sha256 of a dataset's content: a zip's image names with their CRC-32s and sizes, a folder's
    image names with the sha256 of each file, a builtin dataset's pixels. Memoised per process
    while the path's modification time stays the same."""
    stamp = () if path.startswith(datasets.PREFIX) else (os.stat(path).st_mtime_ns, os.stat(path).st_size)
    try:
        return _fingerprint(path, stamp)
    except (OSError, zipfile.BadZipFile) as e:
        raise UserError(f"cannot read dataset {path} to fingerprint it: {e}") from None


def _read_cache(path: str, key: Dict[str, Any], log: Optional[Log]) -> Optional[FeatureStats]:
    if not os.path.exists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {name: f[name] for name in f.files}
        if json.loads(str(arrays.pop("key"))) != key:
            raise ValueError("it was written for other statistics")
        stats = FeatureStats.from_arrays(arrays)
        if stats.num_items != key["num_items"]:
            raise ValueError(f"it holds {stats.num_items} items, not {key['num_items']}")
        return stats
    except Exception as e:  # any damage (truncation, foreign file, wrong arrays) means: recompute
        (log or print)(f"ignoring the statistics cache {path} ({type(e).__name__}: {e}); recomputing")
        return None


def _write_cache(path: str, key: Dict[str, Any], stats: FeatureStats) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, key=np.asarray(json.dumps(key, sort_keys=True)), **stats.arrays())


# ---- generated images -------------------------------------------------------------------------


def group_rng(seed: int, group: int) -> np.random.Generator:
    """The random numbers of one group of generated images (or of PPL pairs)."""
    return np.random.default_rng([int(seed), int(group)])


def latent_groups(
    G, labels: Optional[np.ndarray], seed: int, groups: range, batch_gen: int
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """z ``[k, batch_gen, z_dim]`` float32, c ``[k, batch_gen, c_dim]`` (labels of random dataset
    images, as NVIDIA draws them; zero-width for an unconditional G) and synthesis noise seeds
    ``[k, 2]`` int32, for the given group numbers."""
    zs, cs, seeds = [], [], []
    for g in groups:
        rng = group_rng(seed, g)
        zs.append(rng.standard_normal([batch_gen, G.z_dim]).astype(np.float32))
        if G.c_dim:
            cs.append(labels[rng.integers(0, len(labels), batch_gen)].astype(np.float32))
        else:
            cs.append(np.zeros([batch_gen, 0], np.float32))
        seeds.append(rng.integers(0, 2**31 - 1, 2).astype(np.int32))
    return np.stack(zs), np.stack(cs), np.stack(seeds)


def check_labels(G, labels: Optional[np.ndarray]) -> None:
    if G.c_dim and (labels is None or labels.ndim != 2 or labels.shape[1] != G.c_dim or not len(labels)):
        width = None if labels is None else labels.shape[1:]
        raise UserError(f"the generator is conditional (c_dim {G.c_dim}) but the dataset's labels are {width}")


def generator_stats(
    G,
    detector: FeatureDetector,
    *,
    num_items: int,
    labels: Optional[np.ndarray] = None,
    seed: int = 0,
    truncation_psi: float = 1.0,
    capture_all: bool = False,
    capture_mean_cov: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    batch_gen: int = DEFAULT_BATCH_GEN,
    strategy: Optional[tf.distribute.Strategy] = None,
    log: Optional[Log] = None,
) -> FeatureStats:
    """Features of ``num_items`` images of ``G`` (random synthesis noise, ``truncation_psi``);
    ``labels``: the dataset's label table a conditional G draws from."""
    check_labels(G, labels)
    if batch_size % batch_gen:
        raise ValueError(f"batch_size {batch_size} is not a multiple of batch_gen {batch_gen}")
    per_call = batch_size // batch_gen  # groups per replica per call
    shape = [batch_gen, G.img_resolution, G.img_resolution, G.img_channels]

    def images_and_features(z, c, noise_seeds):
        def one_group(args):
            z, c, s = args
            img = G(z, c if G.c_dim else None, truncation_psi=truncation_psi, noise_mode="random", noise_seed=s)
            return preprocess.float_to_uint8(img)  # NVIDIA's rule: clip(x * 127.5 + 128, 0, 255), truncated

        images = tf.map_fn(one_group, (z, c, noise_seeds), fn_output_signature=tf.TensorSpec(shape, tf.uint8))
        return detector.fn(preprocess.to_rgb(tf.reshape(images, [-1, *shape[1:]])))

    replicas = ReplicaMap(images_and_features, strategy)
    stats = FeatureStats(capture_all=capture_all, capture_mean_cov=capture_mean_cov, max_items=num_items)
    progress = Progress(f"{detector.name} of the generator", num_items, log=log)
    num_calls = -(-num_items // batch_size)
    for calls in rounds(num_calls, replicas.num_replicas):
        inputs = [latent_groups(G, labels, seed, range(b * per_call, (b + 1) * per_call), batch_gen) for b in calls]
        for features in replicas(inputs):
            stats.append(features)
        progress.update(stats.num_items)
    return stats
