"""Where an upload's bytes come from: a local file, read a MiB at a time by each host's
copy, its holes (the runs of zeros a sparse file does not store) told by their length
instead of read, so that virt/storage.py sends them as holes of libvirt's sparse
stream. The file may still be arriving (an upload's staging file): each reader waits for
the bytes the upload has received and never reads past them, so it never sees a chunk
that might still be cut short and written again; the copy task's loop (the only one
that reads the database) moves ``Arrival`` forward. No libvirt here: the services'
copies build their readers from it."""
from __future__ import annotations

import os
import threading

PIECE = 1024 * 1024
_ZERO = bytes(PIECE)


def zeros(n: int) -> bytes:
    """``n`` zero bytes (at most a MiB), without making them anew for a whole MiB."""
    return _ZERO if n == PIECE else _ZERO[:n]


def is_zero(block: bytes) -> bool:
    """Whether ``block`` is all zeros: compared with zeros a MiB at a time (memcmp,
    which stops at the first other byte, so a block of data costs nothing to look at;
    bytes.count or strip would read every byte of it, at a tenth of the speed)."""
    for at in range(0, len(block), PIECE):
        part = block[at:at + PIECE]
        if part != zeros(len(part)):
            return False
    return True


def hole_length(fd: int, offset: int, end: int) -> int:
    """How many bytes of a hole of the file start at ``offset``, up to ``end`` (0 at
    data, or at or past the file's end). A file system that does not tell holes says
    the whole file is data (SEEK_DATA returns the offset)."""
    try:
        data = os.lseek(fd, offset, os.SEEK_DATA)
    except OSError:  # ENXIO: no data after it (a hole up to the end of the file)
        data = os.fstat(fd).st_size
        if data <= offset:
            return 0
    return max(0, min(data, end) - offset)


class Stopped(Exception):
    """The copy must stop (cancel, refusal, another copy failing): raised in a reader."""


class Arrival:
    """How many bytes of the file are final, shared by the readers."""

    def __init__(self, size: int):
        self.size = size
        self.available = 0
        self.stopped = False
        self._cond = threading.Condition()

    def advance(self, available: int) -> None:
        with self._cond:
            if available > self.available:
                self.available = min(available, self.size)
                self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self.stopped = True
            self._cond.notify_all()

    def wait_for(self, end: int) -> int:
        """Wait until ``end`` bytes are final (or the file is whole). Returns how many
        are; raises Stopped when the copy must stop."""
        with self._cond:
            while self.available < min(end, self.size) and not self.stopped:
                self._cond.wait(1.0)
            if self.stopped:
                raise Stopped()
            return self.available


class GrowingFile:
    """One reader of a file arriving under ``arrival``: ``read(n)`` returns the next
    ``n`` bytes (fewer only at the end), waiting for them to arrive; at a hole of the
    file (a run of zeros the upload did not write) it returns the hole's length instead,
    an int, without reading it."""

    def __init__(self, fd: int, arrival: Arrival):
        self.fd, self.arrival, self.offset = fd, arrival, 0

    @classmethod
    def whole(cls, fd: int, size: int) -> "GrowingFile":
        """A reader of a file that is all there (LouCloud's own copy, a local image)."""
        arrival = Arrival(size)
        arrival.advance(size)
        return cls(fd, arrival)

    def read(self, n: int) -> bytes | int:
        end = min(self.offset + n, self.arrival.size)
        if end <= self.offset:
            return b""
        available = self.arrival.wait_for(end)
        hole = hole_length(self.fd, self.offset, min(available, self.arrival.size))
        if hole > 0:
            self.offset += hole
            return hole
        data = os.pread(self.fd, end - self.offset, self.offset)
        if len(data) != end - self.offset:  # the file is shorter than its bytes received
            raise OSError(f"the staged file ends at {self.offset + len(data)} bytes")
        self.offset = end
        return data
