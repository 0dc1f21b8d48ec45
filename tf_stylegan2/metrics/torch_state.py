"""Torch state dicts of the feature networks, checked against the tensors a network expects before
any weight is assigned (:func:`inception.load_torch_weights`, :func:`vgg16.load_torch_weights`)."""

from __future__ import annotations

from typing import Dict, Mapping, Sequence, Tuple

import numpy as np

from tf_stylegan2.fileio import UserError


def checked_tensors(
    state: Mapping[str, np.ndarray],
    shapes: Mapping[str, Tuple[int, ...]],
    source: str,
    network: str,
    optional: Sequence[str] = (),
) -> Dict[str, np.ndarray]:
    """The tensors of ``state`` that ``shapes`` names, as float32 in the file's (torch) layout.

    A tensor that is missing (unless its key ends with one of ``optional``) or whose shape is not
    the one ``shapes`` gives is a UserError naming ``source``, the key and ``network`` (the file
    is then not that network)."""
    tensors = {}
    for key, shape in shapes.items():
        if key not in state:
            if key.endswith(tuple(optional)):
                continue
            raise UserError(f"{source}: missing tensor {key} (not {network})")
        got = tuple(np.shape(state[key]))
        if got != shape:
            raise UserError(f"{source}: {key} has shape {list(got)}, expected {list(shape)} (not {network})")
        tensors[key] = np.asarray(state[key], np.float32)
    return tensors
