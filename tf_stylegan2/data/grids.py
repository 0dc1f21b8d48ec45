"""Preview grids of a dataset (reals.png of a training run, runners/dataset_tool.py --grid)."""

from __future__ import annotations

import numpy as np

from tf_stylegan2.data.dataset import ImageDataset
from tf_stylegan2.data.labels import is_class_labelled
from tf_stylegan2.images import grid


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
