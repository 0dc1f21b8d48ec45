"""Training data: a folder or zip of images (stylegan2-ada's format) or an embedded dataset, read as
an infinite, deterministic, resumable tf.data stream of batches.

The order of images is a fixed function of (seed, position): position p lies in epoch
e = p // N at offset p % N, and shows image ``perm(seed, e)[p % N]``, where ``perm`` is a stateless
pseudorandom permutation (``RandomIndexShuffle``). Nothing is stateful, so resuming at image n
(``start_image=n``) reproduces the rest of the sequence exactly, and every epoch is reshuffled.
Mirroring uses a second permutation of the same epoch: the images at offsets it sends to its first
half are x-flipped, so each epoch mirrors exactly half of the dataset (N // 2 images).

Pixels are decoded once into memory when the decoded dataset fits in ``max_cache_bytes`` (the usual
case for small and medium datasets, and always for the embedded ones); larger datasets are decoded
on the fly with Pillow in tf.data's parallel map (see docs/DATA.md).
"""

from __future__ import annotations

import atexit
import concurrent.futures
import dataclasses
import io
import json
import os
import threading
import time
import zipfile
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
from PIL import Image

from layers.rules import valid_resolution
from tf_stylegan2 import datasets
from tf_stylegan2.fileio import UserError
from tf_stylegan2.images import grid

BUILTIN_PREFIX = "builtin:"
LABELS_FILE = "dataset.json"
DEFAULT_MAX_CACHE_BYTES = 1 << 30
MODE_CHANNELS = {"L": 1, "RGB": 3}  # the pixel formats a training dataset may hold


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What the training loop needs to know about a dataset to build matching networks."""

    name: str  # folder/zip basename or the builtin name, e.g. 'shapes32'
    path: str  # what the user passed
    num_images: int
    resolution: int  # square, power of two >= 4
    channels: int  # 1 or 3
    c_dim: int  # label dimension (number of classes for class labels), 0 without labels


# ---------------------------------------------------------------------------------------------
# Files: the one reader of folders, zips and dataset.json (runners/dataset_tool.py uses it too).


def is_image_name(name: str) -> bool:
    """True for names with an extension Pillow can read (ada's rule), excluding hidden files and
    macOS resource forks (``__MACOSX/``, ``._*``), which carry image extensions but no images."""
    base = name.rsplit("/", 1)[-1]
    if base.startswith(".") or name.startswith("__MACOSX/"):
        return False
    return os.path.splitext(name)[1].lower() in Image.registered_extensions()


class FileSource:
    """A folder or zip: its image names (sorted relative paths with '/'), their bytes, dataset.json."""

    def __init__(self, path: str):
        self.path = path
        self._zip: Optional[zipfile.ZipFile] = None
        self._lock = threading.Lock()  # one reader at a time on the shared zip file handle
        if os.path.isdir(path):
            names = [
                os.path.relpath(os.path.join(root, f), path).replace(os.sep, "/")
                for root, _, files in os.walk(path)
                for f in files
            ]
        elif os.path.isfile(path):
            if not zipfile.is_zipfile(path):
                raise UserError(f"{path} is neither a folder nor a zip file")
            try:
                self._zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as e:
                raise UserError(f"{path}: unreadable zip file ({e})") from None
            names = [n for n in self._zip.namelist() if not n.endswith("/")]
        else:
            raise UserError(f"dataset {path} does not exist")
        self.all_names = set(names)
        self.image_names: List[str] = sorted(n for n in names if is_image_name(n))

    @property
    def name(self) -> str:
        return os.path.splitext(os.path.basename(os.path.normpath(self.path)))[0]

    def where(self, name: str) -> str:
        """How an error message names a file of this source."""
        return f"{self.path}:{name}" if self._zip is not None else os.path.join(self.path, name)

    def read(self, name: str) -> bytes:
        if self._zip is None:
            with open(os.path.join(self.path, name), "rb") as f:
                return f.read()
        with self._lock:
            return self._zip.read(name)

    def open(self, name: str):
        """A binary file object, for reading a header without reading the whole file (one thread)."""
        if self._zip is None:
            return open(os.path.join(self.path, name), "rb")
        return self._zip.open(name)

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def json_labels(self) -> Optional[list]:
        """The ``labels`` list of dataset.json; None when the file is absent or its labels are null."""
        if LABELS_FILE not in self.all_names:
            return None
        where = self.where(LABELS_FILE)
        try:
            meta = json.loads(self.read(LABELS_FILE).decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise UserError(f"{where}: not valid JSON ({e})") from None
        if not isinstance(meta, dict) or "labels" not in meta:
            raise UserError(f'{where}: expected an object with a "labels" entry (stylegan2-ada format)')
        labels = meta["labels"]
        if labels is not None and not isinstance(labels, list):
            raise UserError(f'{where}: "labels" must be a list of [file, label] pairs or null')
        return labels


def decode_image(data: bytes, where: str) -> Image.Image:
    """Decodes a whole image (Pillow) as stored (no EXIF rotation, as in stylegan2-ada); a UserError
    naming the file if it is corrupt or truncated."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
        return image
    except Exception as e:  # Pillow raises many types (OSError, SyntaxError, ValueError, struct.error...)
        raise UserError(f"{where}: corrupt or unreadable image ({type(e).__name__}: {e})") from None


def align_labels(entries: Optional[list], image_names: Sequence[str], where: str) -> Optional[List[Any]]:
    """Maps dataset.json's ``[[file, label], ...]`` onto ``image_names``; UserError naming the first
    file without a label, the first label without a file, or a malformed entry."""
    if entries is None:
        return None
    by_name = {}
    for entry in entries:
        if not (isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[0], str)):
            raise UserError(f"{where}: bad label entry {json.dumps(entry)[:80]} (expected [file, label])")
        by_name[entry[0].replace("\\", "/")] = entry[1]
    missing = [n for n in image_names if n not in by_name]
    if missing:
        raise UserError(f"{where} has no label for {missing[0]} ({len(missing)} images without labels)")
    extra = sorted(set(by_name) - set(image_names))
    if extra:
        raise UserError(f"{where} labels {extra[0]}, which is not an image of the dataset ({len(extra)} such labels)")
    return [by_name[n] for n in image_names]


def label_matrix(labels: Sequence[Any], where: str) -> np.ndarray:
    """float32 ``[N, c_dim]``: one-hot for class indices (c_dim = max + 1, as in stylegan2-ada),
    the vectors themselves for vector labels."""
    if all(isinstance(v, int) and not isinstance(v, bool) for v in labels):
        classes = np.asarray(labels, dtype=np.int64)
        if classes.min() < 0:
            raise UserError(f"{where}: negative class label {classes.min()}")
        return np.eye(int(classes.max()) + 1, dtype=np.float32)[classes]
    try:
        vectors = np.asarray(labels, dtype=np.float32)
    except (TypeError, ValueError):
        vectors = None
    if vectors is None or vectors.ndim != 2 or not np.all(np.isfinite(vectors)):
        raise UserError(f"{where}: labels must all be class indices (int >= 0) or all vectors of one length")
    return vectors


# ---------------------------------------------------------------------------------------------
# The dataset.


def sample_order(positions: tf.Tensor, num_images: int, seed: int, shuffle: bool) -> Tuple[tf.Tensor, tf.Tensor]:
    """Image indices ``[B]`` int64 and x-flip flags ``[B]`` bool at the given stream positions.

    A pure function of (positions, num_images, seed, shuffle): see the module docstring.
    """
    positions = tf.cast(positions, tf.int64)
    epoch, offset = positions // num_images, positions % num_images
    ones = tf.ones_like(positions)

    def permute(stream: int) -> tf.Tensor:
        seeds = tf.stack([ones * seed, epoch, ones * stream], axis=1)  # [B, 3]: seed, epoch, stream
        return tf.raw_ops.RandomIndexShuffle(index=offset, seed=seeds, max_index=ones * (num_images - 1), rounds=4)

    indices = permute(0) if shuffle else offset
    flips = permute(1) < num_images // 2
    return indices, flips


class ImageDataset:
    """Images (uint8, decoded in memory or on the fly) with their labels; ``tf_dataset`` streams them.

    ``labels``: float32 ``[N, c_dim]`` (one-hot for class labels; ``[N, 0]`` without labels),
    ``images(indices)``: uint8 ``[len(indices), R, R, C]``.
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
        _check_image(where, image.mode, image.size, self.info)
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
        return self._decode(self._names[int(index)])

    def tf_dataset(
        self,
        batch_size: int,
        *,
        use_labels: bool,
        mirror: bool,
        seed: int,
        start_image: int = 0,
        shuffle: bool = True,
    ) -> tf.data.Dataset:
        """Infinite, batched, prefetched ``(images float32 [B, R, R, C] in [-1, 1], labels float32
        [B, c_dim] or [B, 0])``; batch k holds stream positions ``start_image + k * B`` to
        ``start_image + k * B + B - 1`` of the sequence described in the module docstring."""
        stream = self.samples(batch_size, use_labels=use_labels, mirror=mirror, seed=seed, start_image=start_image,
                              shuffle=shuffle)
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


# A tf.data thread that calls into Python after interpreter finalization has begun blocks forever, and
# so does the exit, which waits for it, whenever a streaming iterator is still alive then (2 to 3 of 8
# runs of a script that exits right after iterating hung; none of 40 with this hook). So at exit,
# while Python still runs normally, streamed images become instant dummies, and the exit waits
# until tf.data has stopped asking for them (its prefetch buffers fill up within milliseconds).
_last_stream_call = [0.0]
_exiting = threading.Event()


@atexit.register
def _quiesce_streams() -> None:
    _exiting.set()
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and time.monotonic() - _last_stream_call[0] < 0.1:
        time.sleep(0.01)


def _check_image(where: str, mode: str, size: Tuple[int, int], info: DatasetInfo) -> None:
    """UserError unless the image has the dataset's pixel format and size."""
    if mode not in MODE_CHANNELS:
        kind = "has an alpha channel" if "A" in mode else "is not RGB or grayscale"
        raise UserError(f"{where} {kind} (mode {mode}); convert the dataset with runners/dataset_tool.py")
    if MODE_CHANNELS[mode] != info.channels:
        raise UserError(f"mixed channel counts: {where} has {MODE_CHANNELS[mode]}, other images {info.channels}")
    if size != (info.resolution, info.resolution):
        raise UserError(
            f"mixed image sizes: {where} is {size[0]}x{size[1]}, other images {info.resolution}x{info.resolution}"
        )


def _check_resolution(where: str, size: Tuple[int, int]) -> int:
    w, h = size
    if w != h or not valid_resolution(w):
        raise UserError(
            f"{where} is {w}x{h}: training images must be square with a power-of-two size >= 4 "
            "(convert with runners/dataset_tool.py)"
        )
    return w


def _open_builtin(path: str) -> ImageDataset:
    name = path[len(BUILTIN_PREFIX) :]
    if name not in datasets.BUILTIN:
        names = ", ".join(BUILTIN_PREFIX + n for n in datasets.BUILTIN)
        raise UserError(f"unknown dataset {path}; builtin datasets: {names}")
    data = datasets.load_builtin(name)
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
    if path.startswith(BUILTIN_PREFIX):
        return _open_builtin(path)
    source = FileSource(path)
    names = source.image_names
    if not names:
        raise UserError(f"dataset {path} contains no images")
    mode, size = _header(source, names[0])
    where = source.where(names[0])
    info = DatasetInfo(source.name, path, len(names), _check_resolution(where, size), MODE_CHANNELS.get(mode, 3), 0)
    _check_image(where, mode, size, info)
    label_where = source.where(LABELS_FILE)
    labels = align_labels(source.json_labels(), names, label_where)
    matrix = label_matrix(labels, label_where) if labels is not None else np.zeros([len(names), 0], np.float32)
    info = dataclasses.replace(info, c_dim=matrix.shape[1])
    dataset = ImageDataset(info, matrix, source=source, names=names)
    if len(names) * info.resolution**2 * info.channels <= max_cache_bytes:
        with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # Pillow decodes without the GIL
            pixels = np.stack(list(pool.map(dataset._decode, names)))
        source.close()
        return ImageDataset(info, matrix, cache=pixels)
    for name in names[1:]:
        _check_image(source.where(name), *_header(source, name), info)
    return dataset


def _header(source: FileSource, name: str) -> Tuple[str, Tuple[int, int]]:
    """(mode, (width, height)) from an image's header (Pillow reads no pixels for this)."""
    try:
        with source.open(name) as f, Image.open(f) as image:
            return image.mode, image.size
    except Exception as e:  # Pillow's many error types for unidentifiable or broken headers
        raise UserError(f"{source.where(name)}: corrupt or unreadable image ({type(e).__name__}: {e})") from None


def is_class_labelled(dataset: ImageDataset) -> bool:
    """True when every label is one-hot (class labels), as the feature classifier and grids need."""
    labels = dataset.labels
    return bool(labels.shape[1] and np.all(labels.sum(axis=1) == 1))


def grid_indices(dataset: ImageDataset, cols: int = 8, rows: int = 8) -> np.ndarray:
    """int64 dataset indices of a preview grid, row by row, -1 for a blank cell: for class-labelled
    datasets one row per class (its first ``cols`` images) for the first ``rows`` classes,
    otherwise the first ``rows * cols`` images."""
    if not is_class_labelled(dataset):
        return np.arange(min(len(dataset), rows * cols), dtype=np.int64)
    classes = dataset.labels.argmax(axis=1)
    cells = np.full([min(rows, dataset.labels.shape[1]), cols], -1, np.int64)
    for k in range(len(cells)):
        members = np.flatnonzero(classes == k)[:cols]
        cells[k, : len(members)] = members
    return cells.reshape([-1])


def dataset_grid(dataset: ImageDataset, cols: int = 8, rows: int = 8) -> np.ndarray:
    """uint8 ``[rows' * R, cols * R, C]`` preview of the images at :func:`grid_indices` (blank cells black)."""
    indices = grid_indices(dataset, cols, rows)
    r, c = dataset.info.resolution, dataset.info.channels
    cells = np.zeros([len(indices), r, r, c], np.uint8)
    cells[indices >= 0] = dataset.images(indices[indices >= 0])
    return grid(cells, cols=cols)
