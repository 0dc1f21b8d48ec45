"""Training data: a folder or zip of images (stylegan2-ada's format) or a builtin dataset, read as
an infinite, deterministic, resumable tf.data stream of batches.

One module per concept; imports point down this list, and to ``tf_stylegan2.datasets`` (the
builtin datasets), never back:

* ``files``: folders and zips (image names, bytes, dataset.json);
* ``decode``: decoding images, checking their size and pixel format;
* ``labels``: dataset.json labels matched to images, as a float32 matrix;
* ``order``: the deterministic order of a stream (a pure function of seed and position);
* ``dataset``: :class:`DatasetInfo`, :class:`ImageDataset` and its tf.data stream, :func:`open_dataset`;
* ``grids``: preview grids;
* ``convert``: arbitrary images into the training format (runners/dataset_tool.py).
"""

from tf_stylegan2.data.dataset import DatasetInfo, ImageDataset, open_dataset
from tf_stylegan2.data.grids import dataset_grid, grid_indices
from tf_stylegan2.data.labels import is_class_labelled
from tf_stylegan2.data.order import sample_order

__all__ = [
    "DatasetInfo",
    "ImageDataset",
    "dataset_grid",
    "grid_indices",
    "is_class_labelled",
    "open_dataset",
    "sample_order",
]
