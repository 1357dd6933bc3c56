"""Reading a file that is still arriving (the copies of an upload follow it): the
reader never goes past the bytes that arrived, and hands a hole of the file (zeros the
upload did not write) as its length instead of reading it."""
from __future__ import annotations

import os
import threading

import pytest

from loucloud.virt.sources import Arrival, GrowingFile, Stopped, hole_length, is_zero

MiB = 2 ** 20


def _sparse(path, size: int, data_at: list[int]) -> bytes:
    """A file of ``size`` bytes, a MiB of data at each offset of ``data_at``, holes
    elsewhere; its bytes."""
    with open(path, "wb") as f:
        f.truncate(size)
        for at in data_at:
            f.seek(at)
            f.write(os.urandom(MiB))
    return path.read_bytes()


def _read_all(reader, n: int = MiB) -> tuple[bytes, list]:
    """The bytes a reader gives (holes as zeros), and what each read returned."""
    out, pieces = bytearray(), []
    while (piece := reader.read(n)) != b"":
        pieces.append(piece if isinstance(piece, int) else len(piece))
        out += bytes(piece) if isinstance(piece, int) else piece
    return bytes(out), pieces


def test_holes_are_told_by_length_and_the_bytes_come_out_the_same(tmp_path):
    path = tmp_path / "disk.img"
    want = _sparse(path, 6 * MiB, [0, 4 * MiB])
    fd = os.open(path, os.O_RDONLY)
    try:
        assert hole_length(fd, 0, 6 * MiB) == 0            # data
        assert hole_length(fd, MiB, 6 * MiB) == 3 * MiB     # up to the next data
        assert hole_length(fd, MiB, 2 * MiB) == MiB         # no further than asked
        assert hole_length(fd, 5 * MiB, 6 * MiB) == MiB     # a hole to the end
        assert hole_length(fd, 6 * MiB, 6 * MiB) == 0       # past the end
        whole = Arrival(6 * MiB)
        whole.advance(6 * MiB)
        got, pieces = _read_all(GrowingFile(fd, whole))
    finally:
        os.close(fd)
    assert got == want
    # a MiB of data, the 3 MiB hole in one go (not read), data, the last hole
    assert pieces == [MiB, 3 * MiB, MiB, MiB]


def test_a_hole_is_told_only_as_far_as_the_file_has_arrived(tmp_path):
    path = tmp_path / "arriving.img"
    _sparse(path, 4 * MiB, [0])
    arrival = Arrival(8 * MiB)       # the upload will have 8 MiB; 4 have arrived
    arrival.advance(int(2.5 * MiB))
    fd = os.open(path, os.O_RDONLY)
    try:
        reader = GrowingFile(fd, arrival)
        assert len(reader.read(MiB)) == MiB
        # The hole goes on in the file, but only 1.5 MiB of it are final.
        assert reader.read(MiB) == int(1.5 * MiB)
        waiting = []

        def next_read():
            try:
                waiting.append(reader.read(MiB))
            except Stopped as exc:
                waiting.append(exc)
        t = threading.Thread(target=next_read)
        t.start()
        t.join(0.3)
        assert t.is_alive() and not waiting  # it waits for the next MiB to arrive
        arrival.stop()                       # the copy is cancelled meanwhile
        t.join(5)
        assert not t.is_alive() and isinstance(waiting[0], Stopped)
    finally:
        os.close(fd)


def test_a_stopped_copy_stops_its_reader(tmp_path):
    path = tmp_path / "stopped.img"
    _sparse(path, 2 * MiB, [0])
    arrival = Arrival(2 * MiB)
    arrival.stop()
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(Stopped):
            GrowingFile(fd, arrival).read(MiB)
    finally:
        os.close(fd)


def test_a_block_of_zeros_is_told_from_one_with_a_single_other_byte():
    assert is_zero(bytes(MiB)) and is_zero(bytes(100)) and is_zero(bytes(3 * MiB + 7))
    assert is_zero(memoryview(bytes(MiB)))
    for size in (100, MiB, 3 * MiB + 7):
        for at in (0, size // 2, size - 1):   # one byte anywhere makes it data
            block = bytearray(size)
            block[at] = 1
            assert not is_zero(bytes(block)), (size, at)
