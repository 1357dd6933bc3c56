"""A file that is still arriving, read by several threads at once: each host's copy of an
upload reads the staging file up to the bytes the upload has received so far and waits
for more (a stored image is read the same way, all of it arrived). The task's loop (the only one that reads the database) moves ``Arrival``
forward; the readers never read past it, so they never see a chunk that might still be
cut short and written again."""
from __future__ import annotations

import os
import threading

from ..virt.holes import hole_length


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
    an int, without reading it (virt.storage sends it as a hole)."""

    def __init__(self, fd: int, arrival: Arrival):
        self.fd, self.arrival, self.offset = fd, arrival, 0

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
