"""The memory an untrusted file may make the readers allocate, checked before each allocation.

A restricted unpickler stops code, not resource use: a 9-byte pickle can ask Python's unpickler
for a 2 GB memo table, a stride-0 view of a one-element storage can ask for a tensor of any size,
and a zip member can declare (or inflate to) any size. Every reader of untrusted files in
:mod:`tf_stylegan2.official` therefore carries one :class:`Budget` per file and charges it
*before* it allocates on the file's behalf:

    limit = FILE_SIZE_MULTIPLE * file size + LARGEST_NETWORK_BYTES   (2 x the file + 1 GiB)

What is charged (see :mod:`.safe_unpickle` and :mod:`.torch_files`):

* every pickle opcode, ``OPCODE_BYTES`` (covers the object it creates, its memo and stack slots,
  and the plain-data copy made afterwards), plus its argument's length (four times that for
  text, which Python may store with four bytes per character);
* every torch storage read from a file or archive member, by its declared size, and every zip
  member read, by its declared uncompressed size;
* every tensor by its full logical size (elements x item size), even when it is a view that
  shares its storage, so stride-0 views and many tensors over one storage cannot expand past
  the limit.

A legitimate file needs about its own size once or twice over: a StyleGAN2 config-F pickle holds
G, D and G_ema (3 x ~30 M float32 parameters, ~350 MiB); VGG16 has 138 M parameters (528 MiB),
charged once as storage and once as tensors. ``LARGEST_NETWORK_BYTES`` lets the largest of these
expand by a further 1 GiB (shared-storage views, compressed members) without ever letting a small
file reach gigabytes.
"""

from __future__ import annotations

from tf_stylegan2.fileio import UserError

FILE_SIZE_MULTIPLE = 2
LARGEST_NETWORK_BYTES = 1 << 30
OPCODE_BYTES = 256


class ResourceLimitError(UserError):
    """The file asks for more memory than the reader's budget allows."""


def describe(nbytes: int) -> str:
    """``1.5 GiB``-style sizes for messages."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= size:
            return f"{nbytes / size:.1f} {unit}"
    return f"{nbytes} bytes"


class Budget:
    """Bytes left for one file; :meth:`charge` refuses, before allocating, what would not fit."""

    def __init__(self, limit: int, what: str):
        self.limit, self.used, self.what = int(limit), 0, what

    @classmethod
    def for_file(cls, size: int, what: str) -> "Budget":
        return cls(FILE_SIZE_MULTIPLE * max(int(size), 0) + LARGEST_NETWORK_BYTES, what)

    @property
    def left(self) -> int:
        return self.limit - self.used

    def charge(self, nbytes: int, item: str) -> None:
        """Counts ``nbytes`` for ``item`` (e.g. "tensor 'fc.weight'"), or raises ResourceLimitError."""
        if nbytes < 0 or nbytes > self.left:
            raise ResourceLimitError(
                f"{self.what}: {item} would need {describe(nbytes)} on top of {describe(self.used)} already read, "
                f"beyond the reader's budget of {describe(self.limit)} for this file "
                f"({FILE_SIZE_MULTIPLE} x its size + {describe(LARGEST_NETWORK_BYTES)}); refusing it"
            )
        self.used += nbytes
