"""The zip layer of torch's archive formats, every member checked before it is read.

``torch.save`` (torch >= 1.6) and ``torch.jit.save`` write zip files whose members all live under
one top folder, the archive name (``archive/``, or the file's stem):

* ``data.pkl``: the pickled object; its persistent ids ``('storage', <Type>Storage, key,
  location, numel)`` name the storages, each in a member ``data/<key>`` holding ``numel`` raw
  little-endian elements (stored uncompressed, aligned to 64 bytes);
* ``version``, ``byteorder`` (absent in old files: little-endian), ``.data/...`` bookkeeping;
* TorchScript only: ``constants.pkl`` with its storages in ``constants/<key>``, and ``code/``
  (the modules' TorchScript source and debug tables), which this reader never opens.

:class:`TorchArchive` opens such a file with Python's :mod:`zipfile` after checking the end of
central directory against the file, and refuses, with one line each: member names that leave
the archive (absolute, ``..``, backslashes, NUL), members outside the one top folder, duplicate
names, encrypted members or compression other than stored/deflate, absurd declared compression
ratios, members whose data overlap or run past the central directory, and (when read) bad CRCs,
truncated data and sizes beyond the budget. Unpickling is :mod:`.safe_unpickle`'s business.
"""

from __future__ import annotations

import re
import struct
import zipfile
import zlib
from typing import BinaryIO, Dict, List, Optional

from tf_stylegan2.fileio import UserError
from tf_stylegan2.official.budget import Budget

ZIP_MAGIC = b"PK\x03\x04"
# zipfile keeps about this much per central-directory entry (ZipInfo, name, dict slot).
ENTRY_BYTES = 1024
# A deflated member larger than this may not claim more than MAX_RATIO times its compressed size.
RATIO_FREE_BYTES = 1 << 20
MAX_RATIO = 100
_KEY = re.compile(r"^[0-9A-Za-z_]{1,64}$")
_EOCD = struct.Struct("<4s4H2LH")  # signature, disks, entries on disk, entries, cd size, cd offset, comment
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
# What zipfile raises for damaged archives and members.
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, struct.error, NotImplementedError,
               RuntimeError)


def _file_size(f: BinaryIO) -> int:
    f.seek(0, 2)
    return f.tell()


def _central_directory(f: BinaryIO, size: int, what: str):
    """(entries, cd size, cd offset) from the end-of-central-directory records, checked against the file."""
    tail_start = max(0, size - (_EOCD.size + 0xFFFF))
    f.seek(tail_start)
    tail = f.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _EOCD.size:
        raise UserError(f"{what} is truncated or not a zip archive (no end of central directory)")
    _, _, _, _, entries, cd_size, cd_offset, _ = _EOCD.unpack_from(tail, at)
    if 0xFFFF in (entries,) or 0xFFFFFFFF in (cd_size, cd_offset):  # zip64
        locator = tail_start + at - _EOCD64_LOCATOR.size
        f.seek(max(locator, 0))
        sig, _, record, _ = _EOCD64_LOCATOR.unpack(f.read(_EOCD64_LOCATOR.size).ljust(_EOCD64_LOCATOR.size, b"\0"))
        if sig != b"PK\x06\x07" or record + _EOCD64.size > size:
            raise UserError(f"{what} is truncated or damaged (bad zip64 end of central directory)")
        f.seek(record)
        fields = _EOCD64.unpack(f.read(_EOCD64.size))
        if fields[0] != b"PK\x06\x06":
            raise UserError(f"{what} is truncated or damaged (bad zip64 end of central directory)")
        entries, cd_size, cd_offset = fields[7], fields[8], fields[9]
    if cd_offset + cd_size > size or entries * 46 > cd_size:  # a central entry takes at least 46 bytes
        raise UserError(f"{what} is truncated or damaged (its central directory does not fit the file)")
    return entries, cd_size, cd_offset


def _check_name(name: str, what: str) -> None:
    parts = name.split("/")
    if (
        "\x00" in name or "\\" in name or name.startswith("/") or ":" in parts[0]
        or any(p in ("", ".", "..") for p in parts[:-1]) or parts[-1] in (".", "..")
    ):
        raise UserError(f"{what}: refusing archive member {name!r}: its name points outside the archive")


class TorchArchive:
    """A torch zip archive opened for reading members by their name under the top folder."""

    def __init__(self, f: BinaryIO, budget: Budget, what: str):
        self.what, self.budget = what, budget
        size = _file_size(f)
        entries, cd_size, cd_offset = _central_directory(f, size, what)
        budget.charge(cd_size + entries * ENTRY_BYTES, f"the zip directory of {entries} members")
        try:
            self.zip = zipfile.ZipFile(f)
            infos = self.zip.infolist()
        except _ZIP_ERRORS as e:
            raise UserError(f"{what} is not a readable zip archive ({e})") from None
        if not infos:
            raise UserError(f"{what} is an empty zip archive, not a torch file")
        self.members: Dict[str, zipfile.ZipInfo] = {}
        top = infos[0].orig_filename.split("/")[0]
        for info in infos:
            name = info.orig_filename
            _check_name(name, what)
            if name.split("/")[0] != top or "/" not in name:
                raise UserError(f"{what}: archive member {name!r} is outside the archive's folder {top!r}/")
            if name in self.members:
                raise UserError(f"{what}: refusing a zip archive with two members named {name!r}")
            if info.flag_bits & 0x1:
                raise UserError(f"{what}: archive member {name!r} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise UserError(f"{what}: archive member {name!r} uses compression {info.compress_type}, "
                                "not stored or deflate as torch writes")
            stored = info.compress_type == zipfile.ZIP_STORED
            if (stored and info.file_size != info.compress_size) or (
                info.file_size > RATIO_FREE_BYTES and info.file_size > MAX_RATIO * info.compress_size
            ):
                raise UserError(f"{what}: archive member {name!r} declares {info.file_size} bytes from "
                                f"{info.compress_size} compressed (a zip bomb?); refusing it")
            self.members[name] = info
        self._check_layout(f, cd_offset)
        self.top = top

    def _check_layout(self, f: BinaryIO, cd_offset: int) -> None:
        """Every member's data lies between its local header and the next member (no shared bytes)."""
        infos = sorted(self.members.values(), key=lambda i: i.header_offset)
        for info, following in zip(infos, infos[1:] + [None]):
            end = following.header_offset if following is not None else cd_offset
            f.seek(info.header_offset)
            header = f.read(_LOCAL_HEADER.size)
            if len(header) != _LOCAL_HEADER.size or header[:4] != ZIP_MAGIC:
                raise UserError(f"{self.what}: archive member {info.orig_filename!r} has no local header (damaged file)")
            fields = _LOCAL_HEADER.unpack(header)
            data_end = info.header_offset + _LOCAL_HEADER.size + fields[9] + fields[10] + info.compress_size
            if data_end > end:
                raise UserError(f"{self.what}: archive member {info.orig_filename!r} overlaps the next member or "
                                "runs past the directory (truncated or crafted file)")

    def names(self) -> List[str]:
        """Member names below the top folder (``data.pkl``, ``data/0``, ``code/__torch__.py``, ...)."""
        return [name[len(self.top) + 1:] for name in self.members]

    def info(self, name: str) -> Optional[zipfile.ZipInfo]:
        return self.members.get(f"{self.top}/{name}")

    def read(self, name: str, expected_size: Optional[int] = None) -> bytes:
        """The member's bytes, charged to the budget by their declared size before reading; CRC-checked."""
        info = self.info(name)
        if info is None:
            raise UserError(f"{self.what}: the archive has no member {self.top}/{name}")
        if expected_size is not None and info.file_size != expected_size:
            raise UserError(f"{self.what}: archive member {self.top}/{name} holds {info.file_size} bytes, "
                            f"not the {expected_size} its record declares")
        self.budget.charge(info.file_size, f"archive member {self.top}/{name}")
        try:
            # Not ZipFile.read: it inflates up to 2 GiB at a time, whatever the member declares;
            # a sized read inflates no more than the declared size and then checks the CRC.
            with self.zip.open(info) as member:
                data = member.read(info.file_size)
        except _ZIP_ERRORS as e:
            raise UserError(f"{self.what}: archive member {self.top}/{name} is corrupt or truncated ({e})") from None
        if len(data) != info.file_size:
            raise UserError(f"{self.what}: archive member {self.top}/{name} is truncated")
        return data

    def storage_member(self, folder: str, key: str) -> str:
        """The member of storage ``key`` (``data/<key>``), refusing keys that could name anything else."""
        if not isinstance(key, str) or not _KEY.match(key):
            raise UserError(f"{self.what}: refusing storage key {key!r}: it does not name a member of the archive's "
                            f"{folder}/ folder")
        return f"{folder}/{key}"
