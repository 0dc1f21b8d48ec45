"""Labels: stylegan2-ada's dataset.json entries matched to images, checked, and as a float32 matrix.

Class labels are integers in ``[0, MAX_C_DIM)`` and become one-hot rows of ``c_dim = max + 1``
columns (stylegan2-ada's rule); vector labels are lists of at most ``MAX_C_DIM`` finite numbers,
all of one length. The bound is checked before anything is allocated: the label matrix is dense
(``N x c_dim`` float32), so one mistyped class index (50000, 10**30) would otherwise size it.
"""

from __future__ import annotations

import json
from typing import Any, List, Optional, Sequence

import numpy as np

from tf_stylegan2.fileio import UserError

MAX_C_DIM = 4096  # classes or vector entries per label (ImageNet has 1000 classes)
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_KINDS = "labels must all be class indices (integers >= 0) or all vectors of numbers of one length"


def align_labels(entries: Optional[list], image_names: Sequence[str], where: str) -> Optional[List[Any]]:
    """Maps dataset.json's ``[[file, label], ...]`` onto ``image_names``; UserError naming the first
    file without a label, the first label without a file, a file labelled twice, or a malformed entry."""
    if entries is None:
        return None
    by_name = {}
    for entry in entries:
        if not (isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[0], str)):
            raise UserError(f"{where}: bad label entry {json.dumps(entry)[:80]} (expected [file, label])")
        name = entry[0].replace("\\", "/")
        if name in by_name:
            raise UserError(f"{where} labels {name} twice")
        by_name[name] = entry[1]
    missing = [n for n in image_names if n not in by_name]
    if missing:
        raise UserError(f"{where} has no label for {missing[0]} ({len(missing)} images without labels)")
    extra = sorted(set(by_name) - set(image_names))
    if extra:
        raise UserError(f"{where} labels {extra[0]}, which is not an image of the dataset ({len(extra)} such labels)")
    return [by_name[n] for n in image_names]


def _is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def label_dim(labels: Sequence[Any], where: str, names: Optional[Sequence[str]] = None) -> int:
    """``c_dim`` of ``labels`` (one per image; ``names`` name them in errors), after checking them
    all: a UserError for a label that is neither a class index in ``[0, MAX_C_DIM)`` nor a vector of
    finite numbers of the common length ``<= MAX_C_DIM``."""

    def which(i: int) -> str:
        return f"the label of {names[i]}" if names is not None else f"label {i}"

    if not labels:
        return 0
    if _is_index(labels[0]):
        odd = next((i for i, v in enumerate(labels) if not _is_index(v)), None)
        if odd is not None:
            raise UserError(f"{where}: {which(odd)} is {_show(labels[odd])}; {_KINDS}")
        low = min(range(len(labels)), key=labels.__getitem__)
        if labels[low] < 0:
            raise UserError(f"{where}: {which(low)} is {labels[low]}, a negative class label")
        top = max(range(len(labels)), key=labels.__getitem__)
        if labels[top] >= MAX_C_DIM:
            raise UserError(f"{where}: {which(top)} is class {labels[top]}; class labels must lie in [0, {MAX_C_DIM}) "
                            f"(at most {MAX_C_DIM} classes)")
        return labels[top] + 1
    if not isinstance(labels[0], (list, tuple)):
        raise UserError(f"{where}: {which(0)} is {_show(labels[0])}; {_KINDS}")
    length = len(labels[0])
    if not 1 <= length <= MAX_C_DIM:
        raise UserError(f"{where}: {which(0)} is a vector of {length} numbers; label vectors hold 1 to {MAX_C_DIM}")
    for i, v in enumerate(labels):
        if not (isinstance(v, (list, tuple)) and len(v) == length and all(_is_number(x) for x in v)):
            raise UserError(f"{where}: {which(i)} is {_show(v)}; {_KINDS}")
        if not all(abs(x) <= _FLOAT32_MAX for x in v):  # False for NaN; no float conversion of huge ints
            raise UserError(f"{where}: {which(i)} holds a number that is not finite in float32")
    return length


def _show(label: Any) -> str:
    text = json.dumps(label)
    return text if len(text) <= 40 else text[:37] + "..."


def label_matrix(labels: Sequence[Any], where: str, names: Optional[Sequence[str]] = None) -> np.ndarray:
    """float32 ``[N, c_dim]``: one-hot for class indices (c_dim = max + 1, as in stylegan2-ada),
    the vectors themselves for vector labels; checked by :func:`label_dim` first."""
    c_dim = label_dim(labels, where, names)
    if all(_is_index(v) for v in labels):
        matrix = np.zeros([len(labels), c_dim], np.float32)
        matrix[np.arange(len(labels)), np.asarray(labels, np.int64)] = 1.0
        return matrix
    return np.asarray(labels, dtype=np.float32)


def is_class_labelled(dataset) -> bool:
    """True when every label of ``dataset`` (its ``labels`` ``[N, c_dim]``) is one-hot: class
    labels, as the feature classifier and the preview grids need."""
    labels = dataset.labels
    return bool(labels.shape[1] and np.all(labels.sum(axis=1) == 1))
