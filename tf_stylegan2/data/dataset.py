"""Datasets as the training loop sees them: :class:`DatasetInfo`, :class:`ImageDataset` (uint8
images, decoded in memory or on the fly, with their labels) and its tf.data stream, and
:func:`open_dataset`, which opens a folder, a zip or a builtin dataset.

Pixels are decoded once into memory when the decoded dataset fits in ``max_cache_bytes`` (the usual
case for small and medium datasets, and always for the builtin ones); larger datasets are decoded
on the fly with Pillow in tf.data's parallel map (see docs/DATA.md).
"""

from __future__ import annotations

import atexit
import concurrent.futures
import dataclasses
import os
import threading
import time
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np
import tensorflow as tf

from tf_stylegan2 import datasets
from tf_stylegan2.data.decode import MODE_CHANNELS, check_image, decode_image, read_header, training_resolution
from tf_stylegan2.data.files import LABELS_FILE, FileSource
from tf_stylegan2.data.labels import align_labels, label_matrix
from tf_stylegan2.data.order import sample_order
from tf_stylegan2.fileio import UserError

DEFAULT_MAX_CACHE_BYTES = 1 << 30


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What the training loop needs to know about a dataset to build matching networks."""

    name: str  # folder/zip basename or the builtin name, e.g. 'shapes32'
    path: str  # what the user passed
    num_images: int
    resolution: int  # square, power of two >= 4
    channels: int  # 1 or 3
    c_dim: int  # label dimension (number of classes for class labels), 0 without labels


class ImageDataset:
    """Images (uint8, decoded in memory or on the fly) with their labels; ``tf_dataset`` streams them.

    ``labels``: float32 ``[N, c_dim]`` (one-hot for class labels; ``[N, 0]`` without labels),
    ``images(indices)``: uint8 ``[len(indices), R, R, C]``, ``stream_error``: the UserError of the
    first image that failed to decode while streaming (tf.data reports it as an OpError).
    """

    def __init__(
        self,
        info: DatasetInfo,
        labels: np.ndarray,
        cache: Optional[np.ndarray] = None,
        source: Optional[FileSource] = None,
        names: Sequence[str] = (),
    ):
        self.info = info
        self.labels = labels
        # In memory, the pixels live in one tf.Tensor that the tf.data graph gathers from: no Python
        # runs per batch, and the numpy copy is dropped.
        self._cache = None if cache is None else tf.convert_to_tensor(cache)
        self._source = source
        self._names = list(names)
        self.stream_error: Optional[UserError] = None  # the first image that failed while streaming

    def __len__(self) -> int:
        return self.info.num_images

    @property
    def in_memory(self) -> bool:
        return self._cache is not None

    def images(self, indices: Sequence[int]) -> np.ndarray:
        """uint8 ``[len(indices), R, R, C]``."""
        indices = np.asarray(indices, dtype=np.int64).reshape([-1])
        if self._cache is not None:
            return tf.gather(self._cache, indices).numpy()
        return self._decode_many(indices)

    def _decode(self, name: str) -> np.ndarray:
        where = self._source.where(name)
        image = decode_image(self._source.read(name), where)
        check_image(where, image.mode, image.size, self.info.resolution, self.info.channels)
        return np.asarray(image).reshape(self.info.resolution, self.info.resolution, self.info.channels)

    def _decode_many(self, indices: np.ndarray) -> np.ndarray:
        shape = [len(indices), self.info.resolution, self.info.resolution, self.info.channels]
        return np.stack([self._decode(self._names[i]) for i in indices]) if len(indices) else np.zeros(shape, np.uint8)

    @tf.autograph.experimental.do_not_convert
    def _stream_image(self, index: np.ndarray) -> np.ndarray:
        """The streaming path's tf.numpy_function (see _quiesce_streams)."""
        _last_stream_call[0] = time.monotonic()
        if _exiting.is_set():  # nobody will read this image
            return np.zeros([self.info.resolution, self.info.resolution, self.info.channels], np.uint8)
        try:
            return self._decode(self._names[int(index)])
        except UserError as e:  # tf.data reports it as an OpError with a traceback: keep the one line
            self.stream_error = self.stream_error or e
            raise

    def tf_dataset(self, batch_size: int, **options: Any) -> tf.data.Dataset:
        """:meth:`samples` (the same keyword ``options``: ``use_labels``, ``mirror``, ``seed``,
        ``start_image``, ``shuffle``, ...) as infinite, prefetched ``(images float32 [B, R, R, C] in
        [-1, 1], labels float32 [B, c_dim] or [B, 0])`` pairs; batch k holds stream positions
        ``start_image + k * B`` to ``start_image + k * B + B - 1`` of the sequence
        :mod:`tf_stylegan2.data.order` describes."""
        stream = self.samples(batch_size, **options)
        return stream.map(lambda sample: (sample["img"], sample["c"])).prefetch(tf.data.AUTOTUNE)

    def samples(
        self,
        batch_size: int,
        *,
        use_labels: bool,
        mirror: bool,
        seed: int,
        start_image: int = 0,
        shuffle: bool = True,
        global_batch: Optional[int] = None,
        shard_offset: int = 0,
        shard_size: Optional[int] = None,
        extra: Optional[Callable[[tf.Tensor, tf.Tensor], Dict[str, tf.Tensor]]] = None,
    ) -> tf.data.Dataset:
        """Infinite stream of batches of dicts: ``img`` float32 ``[B, R, R, C]`` in [-1, 1], ``c``
        float32 ``[B, c_dim]`` (``[B, 0]`` without labels), ``pos`` int64 ``[B]`` (stream positions).

        Sharding for data-parallel training: of every ``global_batch`` consecutive positions this
        stream takes the ``shard_size`` starting at ``shard_offset``, in batches of ``batch_size``
        (by default the whole global batch, i.e. no sharding). So a worker whose replicas hold
        global batch slots ``[shard_offset, shard_offset + shard_size)`` reads exactly their images,
        and one replica's batch does not depend on how many replicas there are.

        ``extra(position, labels)`` adds per-sample entries before batching, from the sample's
        position (int64 scalar) and the label table (float32 ``[N, c_dim]``): e.g. latents keyed by
        the position, or the labels of random images for a conditional generator.
        """
        global_batch = global_batch or batch_size
        shard_size = shard_size or global_batch
        if batch_size < 1 or start_image < 0:
            raise UserError(f"batch_size must be >= 1 and start_image >= 0 (got {batch_size}, {start_image})")
        if shard_size % batch_size or shard_offset < 0 or shard_offset + shard_size > global_batch:
            raise UserError(
                f"bad shard: {shard_size} images at offset {shard_offset} of a global batch of {global_batch}, "
                f"in batches of {batch_size}"
            )
        if use_labels and self.info.c_dim == 0:
            raise UserError(f"dataset {self.info.path} has no labels (dataset.json) for conditional training")
        n, r, c = self.info.num_images, self.info.resolution, self.info.channels
        labels = tf.constant(self.labels if use_labels else np.zeros([n, 0], np.float32))

        # Per image, then batched: flipping single images is several times faster than selecting
        # flipped images within a batch (tf.where over a uint8 batch is slow on CPU).
        def sample(i: tf.Tensor) -> Dict[str, tf.Tensor]:
            position = start_image + (i // shard_size) * global_batch + shard_offset + i % shard_size
            indices, flips = sample_order(position[None], n, seed, shuffle)
            index = indices[0]
            if self._cache is not None:
                pixels = tf.gather(self._cache, index)
            else:
                pixels = tf.numpy_function(self._stream_image, [index], tf.uint8, stateful=False)
                pixels = tf.ensure_shape(pixels, [r, r, c])
            if mirror:
                pixels = tf.cond(flips[0], lambda: tf.reverse(pixels, axis=[1]), lambda: pixels)
            out = {"img": pixels, "c": tf.gather(labels, index), "pos": position}
            if extra is not None:
                out.update(extra(position, labels))
            return out

        def to_float(batch: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
            return {**batch, "img": tf.cast(batch["img"], tf.float32) / 127.5 - 1.0}

        images = tf.data.Dataset.range(np.iinfo(np.int64).max).map(
            sample, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
        batches = images.batch(batch_size, drop_remainder=True)
        return batches.map(to_float, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


# Works around a race at interpreter exit: TensorFlow's Python-function kernel (tf.numpy_function,
# here run by tf.data's threads) checks that Python is still initialized and then takes the GIL
# (tensorflow/tensorflow#21277 and its fix, pull request #21319, whose review notes the race left
# between the two). A thread that takes the GIL once finalization has begun is terminated by
# CPython (python/cpython bpo-36427, "Document that PyEval_RestoreThread and PyGILState_Ensure can
# terminate the calling thread"), and the exit, which waits for tf.data's threads, hangs. Without
# this hook 2 of 8 runs of a script that exits right after taking three streamed batches hung;
# none of 8 with it. So at exit, while Python still runs normally, streamed images become instant
# dummies, and the exit waits until tf.data has stopped asking for them (its prefetch buffers
# fill up within milliseconds).
_last_stream_call = [0.0]
_exiting = threading.Event()


@atexit.register
def _quiesce_streams() -> None:
    _exiting.set()
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and time.monotonic() - _last_stream_call[0] < 0.1:
        time.sleep(0.01)


def _open_builtin(path: str) -> ImageDataset:
    name, data = datasets.load_path(path)
    n, r, _, c = data.images.shape
    info = DatasetInfo(name, path, n, r, c, len(data.class_names))
    return ImageDataset(info, label_matrix(data.labels.tolist(), path), cache=data.images)


def open_dataset(path: str, max_cache_bytes: int = DEFAULT_MAX_CACHE_BYTES) -> ImageDataset:
    """Opens a folder or .zip of images in the training format (all square, one power-of-two size, one
    channel count; optional stylegan2-ada dataset.json labels) or ``builtin:<name>``.

    When the decoded dataset fits in ``max_cache_bytes`` every image is decoded now (so any corrupt
    file fails here) and kept in memory; otherwise every image header is checked now and the pixels
    are decoded while streaming. Bad input raises a one-line UserError naming the problem and file.
    """
    if datasets.is_builtin(path):
        return _open_builtin(path)
    source = FileSource(path)
    names = source.image_names
    if not names:
        raise UserError(f"dataset {path} contains no images")
    mode, size = read_header(source, names[0])
    where = source.where(names[0])
    info = DatasetInfo(source.name, path, len(names), training_resolution(where, size), MODE_CHANNELS.get(mode, 3), 0)
    check_image(where, mode, size, info.resolution, info.channels)
    label_where = source.where(LABELS_FILE)
    labels = align_labels(source.json_labels(), names, label_where)
    matrix = label_matrix(labels, label_where, names) if labels is not None else np.zeros([len(names), 0], np.float32)
    info = dataclasses.replace(info, c_dim=matrix.shape[1])
    dataset = ImageDataset(info, matrix, source=source, names=names)
    if len(names) * info.resolution**2 * info.channels <= max_cache_bytes:
        with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # Pillow decodes without the GIL
            pixels = np.stack(list(pool.map(dataset._decode, names)))
        source.close()
        return ImageDataset(info, matrix, cache=pixels)
    for name in names[1:]:
        check_image(source.where(name), *read_header(source, name), info.resolution, info.channels)
    return dataset
