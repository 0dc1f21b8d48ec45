"""Folders and zips of images: the one reader of their file names, bytes and dataset.json
(training and runners/dataset_tool.py both read through it)."""

from __future__ import annotations

import json
import os
import threading
import zipfile
from typing import List, Optional

from PIL import Image

from tf_stylegan2.fileio import UserError

LABELS_FILE = "dataset.json"


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
