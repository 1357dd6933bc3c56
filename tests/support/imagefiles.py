"""Real image files for the upload tests: qcow2 made by qemu-img, ISO 9660 made by
pycdlib (the library LouCloud's seeds use), and broken ones."""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
from pathlib import Path


def raw_with_data(path: Path, size: int, seed: int = 1) -> Path:
    """A sparse raw disk with recognisable bytes in a few places."""
    with open(path, "wb") as f:
        f.truncate(size)
        for i, offset in enumerate((0, size // 3, size - 70000)):
            f.seek(max(0, offset))
            f.write(hashlib.sha256(f"{seed}-{i}".encode()).digest() * 2000)
    return path


def qcow2(path: Path, size: int = 64 * 2 ** 20, seed: int = 1, *, full: bool = False) -> Path:
    """A standalone qcow2 (qemu-img convert of a raw disk with data in a few places, or
    with ``full`` in every cluster: then its file is about ``size`` bytes)."""
    raw = path.with_suffix(".src.raw")
    (filled if full else raw_with_data)(raw, size, seed)
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(path)],
                   check=True)
    raw.unlink()
    return path


def qcow2_with_backing(path: Path, base: Path) -> Path:
    subprocess.run(["qemu-img", "create", "-f", "qcow2", "-F", "qcow2", "-b", str(base),
                    str(path)], check=True, capture_output=True)
    return path


def truncated(src: Path, dest: Path, keep: float = 0.5) -> Path:
    data = src.read_bytes()
    dest.write_bytes(data[:int(len(data) * keep)])
    return dest


def iso(path: Path, volume_id: str = "Debian 11.6.0 amd64 n", payload: int = 200_000) -> Path:
    import pycdlib

    disc = pycdlib.PyCdlib()
    disc.new(interchange_level=3, vol_ident=volume_id)
    body = os.urandom(payload)
    disc.add_fp(io.BytesIO(body), len(body), "/DATA.BIN;1")
    disc.write(str(path))
    disc.close()
    return path


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def filled(path: Path, size: int, seed: int = 1) -> Path:
    """A raw disk whose every byte is written (no holes, no all-zero block): a copy of
    it moves ``size`` real bytes. Each MiB differs from the others."""
    block = hashlib.sha256(f"filled-{seed}".encode()).digest() * (2 ** 20 // 32)
    with open(path, "wb") as f:
        for i in range(0, size, 2 ** 20):
            piece = i.to_bytes(8, "little") + block[8:]
            f.write(piece[:min(2 ** 20, size - i)])
    return path


def qcow2_filled(path: Path, size: int, seed: int = 1) -> Path:
    return qcow2(path, size, seed, full=True)


def mostly_zeros(path: Path, size: int, seed: int = 1) -> Path:
    """A raw disk of ``size`` bytes (at least 4 MiB) that is mostly zeros, every one of
    them written (no hole in this file: whatever sees holes later found the zeros in
    its bytes): data in its first MiB, in the first half of the MiB in the middle, and
    in its last 64 KiB."""
    mib = 2 ** 20
    data = hashlib.sha256(f"zeros-{seed}".encode()).digest() * (mib // 32)
    middle = (size // mib // 2) * mib
    with open(path, "wb") as f:
        for offset in range(0, size, mib):
            block = bytearray(min(mib, size - offset))
            if offset == 0:
                block[:] = data[:len(block)]
            elif offset == middle:
                block[:mib // 2] = data[:mib // 2]
            if offset + len(block) == size:
                block[-65536:] = data[:65536]
            f.write(block)
    return path
