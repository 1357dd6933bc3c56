"""What an image file is, read from its own bytes: qcow2, ISO 9660 or raw, its virtual
size, an ISO's volume id, and the problems that make it unusable (a backing file, a
file cut short, a compressed archive, a format LouCloud does not run). Pure Python, no
program started; it reads the headers and qcow2's tables, never the whole file."""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from flask_babel import gettext as _, lazy_gettext as _l

FORMATS = ("qcow2", "raw", "iso")
EXTENSIONS = {".qcow2": "qcow2", ".qcow": "qcow2", ".img": "raw", ".raw": "raw",
              ".iso": "iso"}
ISO_DESCRIPTOR = 16 * 2048          # the primary volume descriptor's offset
HEAD_BYTES = ISO_DESCRIPTOR + 2048  # enough of a file to tell what it is


class ImageFileProblem(Exception):
    """The file cannot be used; the text says why, for the administrator."""


@dataclass(frozen=True)
class FileFacts:
    format: str
    virtual_size: int
    file_size: int
    volume_id: str = ""     # an ISO's


# Formats recognised only to be refused with a clear message (in the reader's language:
# sniff() returns it translated).
OTHER_MAGICS = (
    (0, b"\x1f\x8b", _l("a gzip archive: unpack it first")),
    (0, b"\xfd7zXZ\x00", _l("an xz archive: unpack it first")),
    (0, b"BZh", _l("a bzip2 archive: unpack it first")),
    (0, b"\x28\xb5\x2f\xfd", _l("a zstd archive: unpack it first")),
    (0, b"PK\x03\x04", _l("a zip archive: unpack it first")),
    (0, b"KDMV", _l("a VMDK disk: convert it with qemu-img convert -O qcow2")),
    (0, b"# Disk DescriptorFile", _l("a VMDK descriptor: convert the disk to qcow2")),
    (0, b"vhdxfile", _l("a VHDX disk: convert it with qemu-img convert -O qcow2")),
    (0, b"conectix", _l("a VHD disk: convert it with qemu-img convert -O qcow2")),
    (64, b"\x7f\x10\xda\xbe", _l("a VirtualBox VDI disk: convert it to qcow2")),
    (0, b"QED\x00", _l("a QED disk: convert it to qcow2")),
)
# What a file of each format is, and what it was found to be instead.
EXPECTED = {"qcow2": _l("a qcow2 image (it has no QFI header)"),
            "iso": _l("an ISO 9660 image (no CD001 descriptor at 32 KiB)"),
            "raw": _l("a raw disk")}
FOUND = {"qcow2": _l("it is a qcow2 file"), "iso": _l("it is an iso file"),
         "raw": _l("it is a raw file")}


def expected_from_name(filename: str) -> str | None:
    """The format a file's name promises (.qcow2, .iso, .img, .raw), if any."""
    return EXTENSIONS.get(os.path.splitext(filename.lower())[1])


def sniff(head: bytes) -> str:
    """The format the first bytes of a file tell (the browser sends them before the
    upload): qcow2, iso, raw, or a description of what LouCloud does not take."""
    if head[:4] == b"QFI\xfb":
        return "qcow2"
    if head[ISO_DESCRIPTOR + 1:ISO_DESCRIPTOR + 6] == b"CD001":
        return "iso"
    for offset, magic, what in OTHER_MAGICS:
        if head[offset:offset + len(magic)] == magic:
            return str(what)
    return "raw"


def iso_volume_id(head: bytes) -> str:
    desc = head[ISO_DESCRIPTOR:ISO_DESCRIPTOR + 2048]
    if desc[1:6] != b"CD001":
        return ""
    return desc[40:72].decode("ascii", "replace").strip()


def accepted_format(head: bytes, chosen: str = "auto", filename: str = "") -> str:
    """The format a file starting with ``head`` is taken as (the first HEAD_BYTES, or
    all of a shorter file); raises ImageFileProblem when LouCloud does not take it or it
    is not what was chosen (or what its name promises)."""
    found = sniff(head)
    if found not in FORMATS:
        raise ImageFileProblem(_("The file is %(what)s.", what=found))
    want = chosen if chosen in FORMATS else expected_from_name(filename)
    if want and want != found:
        what, reason = EXPECTED[want], FOUND[found]
        if chosen not in FORMATS:
            raise ImageFileProblem(_("The file is named %(extension)s but is not %(what)s: "
                                     "%(reason)s.", extension=os.path.splitext(filename)[1],
                                     what=what, reason=reason))
        raise ImageFileProblem(_("The file is not %(what)s: %(reason)s.", what=what,
                                 reason=reason))
    return found


def inspect(path: str, chosen: str = "auto", filename: str = "") -> FileFacts:
    """The facts of the file at ``path``. ``chosen`` is the format the administrator
    picked (auto: the one the file name promises, if any). Raises ImageFileProblem."""
    size = os.path.getsize(path)
    if size == 0:
        raise ImageFileProblem(_("The file is empty."))
    with open(path, "rb") as f:
        head = f.read(HEAD_BYTES)
        found = accepted_format(head, chosen, filename)
        if found == "qcow2":
            return FileFacts("qcow2", _check_qcow2(f, head, size), size)
        if found == "iso":
            return FileFacts("iso", size, size, _check_iso(head, size))
        return FileFacts("raw", size, size)


def _check_iso(head: bytes, size: int) -> str:
    desc = head[ISO_DESCRIPTOR:ISO_DESCRIPTOR + 2048]
    blocks = struct.unpack_from("<I", desc, 80)[0]
    block_size = struct.unpack_from("<H", desc, 128)[0] or 2048
    if blocks * block_size > size:
        raise ImageFileProblem(_("The ISO is cut short: its descriptor says %(expected)s "
                                 "bytes, the file has %(size)s.",
                                 expected=blocks * block_size, size=size))
    return iso_volume_id(head)


QCOW2_OFFSET_MASK = 0x00fffffffffffe00
QCOW2_COMPRESSED = 1 << 62


def _check_qcow2(f, head: bytes, size: int) -> int:
    if len(head) < 72:
        raise ImageFileProblem(_("The qcow2 header is cut short."))
    (version, backing_offset, _backing_len, cluster_bits, virtual_size, crypt, l1_size,
     l1_offset, rc_offset, rc_clusters) = struct.unpack_from(">IQIIQIIQQI", head, 4)
    if version not in (2, 3):
        raise ImageFileProblem(_("qcow2 version %(version)s is not supported (2 or 3).",
                                 version=version))
    if backing_offset:
        raise ImageFileProblem(_("The qcow2 image has a backing file; upload a standalone "
                                 "image (qemu-img convert -O qcow2 makes one)."))
    if crypt:
        raise ImageFileProblem(_("The qcow2 image is encrypted."))
    if version == 3 and len(head) >= 80:
        incompatible = struct.unpack_from(">Q", head, 72)[0]
        if incompatible & 0b100:
            raise ImageFileProblem(_("The qcow2 image keeps its data in an external file."))
    if not 9 <= cluster_bits <= 21:
        raise ImageFileProblem(_("The qcow2 header is damaged (cluster size)."))
    cluster = 1 << cluster_bits
    short = ImageFileProblem(_("The qcow2 image is cut short: its tables point past the end "
                               "of the file (%(size)s bytes).", size=size))
    if l1_offset + 8 * l1_size > size or rc_offset + cluster * rc_clusters > size:
        raise short
    f.seek(l1_offset)
    l1 = struct.unpack(f">{l1_size}Q", f.read(8 * l1_size))
    compressed_mask = (1 << (62 - (cluster_bits - 8))) - 1
    for entry in l1:
        l2_offset = entry & QCOW2_OFFSET_MASK
        if not l2_offset:
            continue
        if l2_offset + cluster > size:
            raise short
        f.seek(l2_offset)
        table = f.read(cluster)
        for l2 in struct.unpack(f">{cluster // 8}Q", table):
            if l2 & QCOW2_COMPRESSED:
                offset = l2 & compressed_mask
            else:
                offset = l2 & QCOW2_OFFSET_MASK
            if offset >= size:
                raise short
    return virtual_size
