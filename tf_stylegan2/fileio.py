"""Atomic writes: produce a file or directory under a temporary name, then rename it into place.

A crash, a full disk or a bad input therefore never leaves a half-written checkpoint, image or
export where a good one was, and never destroys the previous version before the new one is whole.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import Iterator


class UserError(Exception):
    """A problem with the user's input (path, flag, file contents) rather than a bug; runners print
    its message on one line and exit non-zero."""


@contextlib.contextmanager
def atomic_path(path: str, overwrite: bool = True) -> Iterator[str]:
    """Yields a temporary path beside ``path``; on success renames it to ``path``.

    Works for files and directories (whatever the caller creates at the yielded path). With
    ``overwrite=False`` an existing ``path`` is a UserError, checked before any work is done.
    On error the temporary is removed and ``path`` is untouched.
    """
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    if os.path.exists(path) and not overwrite:
        raise UserError(f"{path} already exists (refusing to overwrite)")
    os.makedirs(parent, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", dir=parent)
    tmp = os.path.join(tmp_dir, os.path.basename(path))
    try:
        yield tmp
        if not os.path.exists(tmp):
            raise RuntimeError(f"nothing was written for {path}")
        if os.path.isdir(path) and not os.path.islink(path):
            # A directory cannot be replaced in one rename: move the old one aside first.
            old = os.path.join(tmp_dir, ".old")
            os.rename(path, old)
            os.rename(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def write_text(path: str, text: str) -> None:
    """Writes a text file atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
