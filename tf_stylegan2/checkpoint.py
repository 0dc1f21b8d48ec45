"""Loading networks from files: the one loader that every runner, export and metric uses."""

from __future__ import annotations

import os
import zipfile

import keras

from tf_stylegan2.fileio import UserError
from tf_stylegan2.networks import Discriminator, Generator


def _load_keras(path: str, cls: type):
    if not os.path.exists(path):
        raise UserError(f"no such file: {path}")
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path} is not a .keras file (not a zip archive)")
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as e:  # Keras raises many types for foreign or damaged archives
        raise UserError(f"cannot load {path}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
    if not isinstance(model, cls):
        raise UserError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
    return model


def load_generator(path: str) -> Generator:
    """Loads a Generator from a ``.keras`` file."""
    return _load_keras(path, Generator)


def load_discriminator(path: str) -> Discriminator:
    """Loads a Discriminator from a ``.keras`` file."""
    return _load_keras(path, Discriminator)
