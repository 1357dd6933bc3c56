"""The holes of a local file (the runs of zeros a sparse file does not store), which
an upload sends to a host as holes of libvirt's sparse stream instead of reading them.
No libvirt here: the services' readers of a file still arriving use it too."""
from __future__ import annotations

import os


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
