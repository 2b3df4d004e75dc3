"""A range of bytes of an open file, as a dataset chunk that is never read into memory.

A :class:`FileRegion` names ``length`` bytes at ``offset`` of the file open as descriptor
``fd``. It is a value (no I/O here: this module belongs to the sans-I/O layer): the
fragmenter slices it like a ``memoryview`` and places it as a PDV's payload, and the socket
transport writes it with ``os.sendfile`` (:mod:`aiodimse.net.sendfile`), so the bytes go
from the page cache to the socket without passing through Python.

Whoever creates regions owns the descriptor and must keep it open until every PDU holding
one of its regions has been written (for a C-STORE: until the request was sent). ``owner``
(optional) is the open file object itself: the writer refuses a region whose owner was
closed, so a region left over after its file closed can never send the bytes of another
file that reused the descriptor number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["FileRegion"]


@dataclass(frozen=True, slots=True)
class FileRegion:
    """``length`` bytes at ``offset`` of open file descriptor ``fd`` (see the module)."""

    fd: int
    offset: int
    length: int
    owner: object = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.fd < 0 or self.offset < 0 or self.length < 0:
            raise ValueError(f"invalid file region {self!r}")

    def __len__(self) -> int:
        return self.length

    def __bool__(self) -> bool:
        return self.length > 0

    def __getitem__(self, key: slice) -> FileRegion:
        """A sub-region, as ``memoryview`` slicing would give (steps are not supported)."""
        if not isinstance(key, slice):
            raise TypeError("a FileRegion is sliced, not indexed")
        start, stop, step = key.indices(self.length)
        if step != 1:
            raise ValueError("a FileRegion slice has no step")
        # Valid by construction: skip __init__'s checks (one slice per PDU, a hot path).
        part = object.__new__(FileRegion)
        object.__setattr__(part, "fd", self.fd)
        object.__setattr__(part, "offset", self.offset + start)
        object.__setattr__(part, "length", max(0, stop - start))
        object.__setattr__(part, "owner", self.owner)
        return part
