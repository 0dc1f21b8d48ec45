"""Labels: stylegan2-ada's dataset.json entries matched to images, and as a float32 matrix."""

from __future__ import annotations

import json
from typing import Any, List, Optional, Sequence

import numpy as np

from tf_stylegan2.fileio import UserError


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


def is_class_labelled(dataset) -> bool:
    """True when every label of ``dataset`` (its ``labels`` ``[N, c_dim]``) is one-hot: class
    labels, as the feature classifier and the preview grids need."""
    labels = dataset.labels
    return bool(labels.shape[1] and np.all(labels.sum(axis=1) == 1))
