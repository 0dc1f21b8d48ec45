"""Writes that fail whole: atomic files and directories, appended lines, one-line write errors, and
signals that finish or abandon a write instead of tearing it.

A crash, a full disk or a bad input therefore never leaves a half-written checkpoint, image or
export where a good one was, and never destroys the previous version before the new one is whole.
A write that fails raises :class:`WriteError`, one line naming the path, the directory and why
(no space, with the space free and needed; a read-only file system; no permission; a file where a
directory should be).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import signal
import tempfile
from typing import Iterator, List, Optional

PARTIAL = ".partial-"  # marks atomic_path's temporaries: .<name>.partial-XXXXXXXX


class UserError(Exception):
    """A problem with the user's input (path, flag, file contents) rather than a bug; runners print
    its message on one line and exit non-zero."""


class WriteError(UserError):
    """A file or directory could not be written (disk full, read-only, permissions, a file in the
    way); whatever was there before is unchanged."""


# ---- what a failed write means ----------------------------------------------------------------

# TensorFlow's file errors carry the C library's text, not an errno.
_ERRNO_TEXT = (
    ("No space left on device", errno.ENOSPC),
    ("Disk quota exceeded", errno.EDQUOT),
    ("Read-only file system", errno.EROFS),
    ("Permission denied", errno.EACCES),
    ("Not a directory", errno.ENOTDIR),
)
_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)  # raised by writes only


def error_number(error: BaseException) -> Optional[int]:
    """The errno of an OSError, or the one TensorFlow's error text names."""
    if isinstance(error, OSError) and error.errno:
        return error.errno
    text = str(error)
    return next((code for phrase, code in _ERRNO_TEXT if phrase in text), None)


def size_text(num_bytes: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:.1f} {unit}"
    return f"{num_bytes} bytes"


def _existing_ancestor(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def _reason(path: str, error: BaseException, needed: Optional[int]) -> str:
    """Why writing ``path`` failed, naming the directory concerned."""
    code = error_number(error)
    filename = getattr(error, "filename", None)
    # The directory the failing call wrote into: the parent of the file it names (the nearest one
    # that exists: makedirs fails on the first missing component), else the target's parent.
    where = _existing_ancestor(os.path.dirname(os.path.abspath(filename or path)))
    if not os.path.isdir(where) or code in (errno.ENOTDIR, errno.EEXIST):
        blocker = _existing_ancestor(path)
        if not os.path.isdir(blocker):
            return f"{blocker} is a file, not a directory"
    if code in (errno.ENOSPC, errno.EDQUOT):
        free = shutil.disk_usage(where).free
        what = "no space left on device" if code == errno.ENOSPC else "disk quota exceeded"
        return f"{what} in {where} ({size_text(free)} free{', ' + size_text(needed) + ' needed' if needed else ''})"
    if code == errno.EFBIG:
        return f"file too large for the file system of {where}"
    if code == errno.EROFS:
        return f"{where} is on a read-only file system"
    if code in (errno.EACCES, errno.EPERM):
        return f"no permission to write in {where}"
    if code == errno.EISDIR:
        return f"{path} is a directory"
    text = getattr(error, "strerror", None) or (str(error).strip().splitlines() or [type(error).__name__])[0]
    return f"{text} ({where})"


def write_error(path: str, error: BaseException, needed: Optional[int] = None, what: Optional[str] = None) -> WriteError:
    """A one-line WriteError for a failed write of ``path`` (``needed``: bytes it would take;
    ``what``: how to name it, by default the path)."""
    return WriteError(f"cannot write {what or path}: {_reason(path, error, needed)}")


def as_os_error(error: BaseException, path: str) -> BaseException:
    """An OSError with the errno that a TensorFlow file error's text names (SaveV2 reports a full
    disk as ResourceExhaustedError), so that atomic_path treats it as a failed write; ``error``
    itself when its text names none."""
    code = error_number(error)
    return error if code is None else OSError(code, os.strerror(code), path)


def os_error_message(error: OSError) -> str:
    """One line for an OSError that reached a runner: what failed, on which path."""
    filename = error.filename
    if filename is None:
        return str(error)
    code = error.errno
    if code == errno.ENOENT:
        return f"no such file or directory: {filename}"
    if code in (errno.EACCES, errno.EPERM):
        return f"permission denied: {filename}"
    if code in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR) or code in _WRITE_ERRNOS:
        return f"cannot write {filename}: {_reason(filename, error, None)}"
    return f"{filename}: {error.strerror or error}"


# ---- atomic writes ----------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_path(path: str, overwrite: bool = True, needed: Optional[int] = None) -> Iterator[str]:
    """Yields a temporary path beside ``path``; on success renames it to ``path``.

    Works for files and directories (whatever the caller creates at the yielded path). With
    ``overwrite=False`` an existing ``path`` is a UserError, checked before any work is done.
    On error the temporary is removed and ``path`` is untouched. A write that fails for want of
    space, a read-only file system, permissions or a file in the way raises a WriteError
    (``needed``: the bytes the write takes, for its message); errors of other kinds pass through.
    """
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    if os.path.exists(path) and not overwrite:
        raise UserError(f"{path} already exists (refusing to overwrite)")
    try:
        os.makedirs(parent, exist_ok=True)
        tmp_dir = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}{PARTIAL}", dir=parent)
    except OSError as e:
        raise write_error(path, e, needed) from None
    tmp = os.path.join(tmp_dir, os.path.basename(path))
    old = os.path.join(tmp_dir, ".old")
    failure = None  # a failed write is reported once the temporary is gone (the free space counts it)
    try:
        try:
            yield tmp
        except OSError as e:
            if error_number(e) not in _WRITE_ERRNOS:
                raise
            failure = e
        else:
            if not os.path.exists(tmp):
                raise RuntimeError(f"nothing was written for {path}")
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    # A directory cannot be replaced in one rename: move the old one aside first.
                    os.rename(path, old)
                    os.rename(tmp, path)
                else:
                    os.replace(tmp, path)
            except OSError as e:
                failure = e
    finally:
        if os.path.exists(old) and not os.path.exists(path):
            os.rename(old, path)  # interrupted between the two renames: the old version goes back
        shutil.rmtree(tmp_dir, ignore_errors=True)
    if failure is not None:
        raise write_error(path, failure, needed) from None


def remove_partial(directory: str) -> List[str]:
    """Removes the temporaries that atomic_path left in ``directory`` when its process was killed
    (SIGKILL, power loss: no ``finally`` ran); returns their names."""
    if not os.path.isdir(directory):
        return []
    stale = sorted(n for n in os.listdir(directory) if n.startswith(".") and PARTIAL in n)
    for name in stale:
        path = os.path.join(directory, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.remove(path)
    return stale


def sha256_file(path: str) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks (weights files are gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_text(path: str, text: str) -> None:
    """Writes a text file atomically."""
    data = text.encode("utf-8")
    with atomic_path(path, needed=len(data)) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def append_line(path: str, line: str) -> None:
    """Appends ``line`` and a newline to a text file, whole or not at all: a failed write (e.g. a
    full disk) is cut off again, so the file never ends in a torn line."""
    data = (line + "\n").encode("utf-8")
    with uninterrupted():
        try:
            with open(path, "ab", buffering=0) as f:  # unbuffered: a failed write fails here, not at close
                start = f.seek(0, os.SEEK_END)
                try:
                    view = memoryview(data)
                    while view:  # a write may take part of the bytes
                        view = view[f.write(view):]
                except BaseException:
                    f.truncate(start)
                    raise
        except OSError as e:
            raise write_error(path, e, len(data)) from None


# ---- signals ----------------------------------------------------------------------------------


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived (a KeyboardInterrupt, so that ``except Exception`` lets it pass)."""

    def __init__(self, signum: int, message: Optional[str] = None):
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        super().__init__(message or f"interrupted by {self.signal_name}")

    def __str__(self) -> str:
        return str(self.args[0])


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_sections = {"depth": 0, "pending": None}


def _on_stop_signal(signum: int, frame) -> None:
    if _sections["depth"] and _sections["pending"] is None:
        _sections["pending"] = signum  # the write in progress finishes first; a second signal abandons it
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within: SIGINT and SIGTERM raise :class:`Interrupted` in the main thread, so that ``finally``
    blocks run (atomic_path removes its temporary), except inside :func:`uninterrupted` sections,
    which finish first. The previous handlers come back afterwards."""
    previous = {s: signal.signal(s, _on_stop_signal) for s in _STOP_SIGNALS}
    _sections["pending"] = None
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _sections["pending"] = None


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """A section that a stop signal does not cut short (under :func:`stop_on_signals`): the signal
    takes effect when the section ends; a second one during the section interrupts it at once."""
    _sections["depth"] += 1
    try:
        yield
    finally:
        _sections["depth"] -= 1
    pending = _sections["pending"]
    if pending is not None and not _sections["depth"]:
        _sections["pending"] = None
        raise Interrupted(pending)
