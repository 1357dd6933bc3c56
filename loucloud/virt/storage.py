"""Storage verbs: LouCloud's pool on a host, images, and VM overlay volumes. Everything
goes through libvirt's storage API, so it works the same on remote hosts."""
from __future__ import annotations

import hashlib
import io
import os
import logging
import posixpath
from dataclasses import dataclass

import libvirt

from . import xml
from .sources import PIECE, GrowingFile, is_zero, zeros
from .errors import InvalidState, NotSupported, PoolNotFound, VirtError, VolumeNotFound, translate

log = logging.getLogger(__name__)

IMAGE_FORMATS = ("qcow2", "raw")


class ImageProblem(VirtError):
    """The file exists but cannot be used as an image (a directory, a backing file...)."""


@dataclass(frozen=True)
class ImageInfo:
    path: str
    format: str
    virtual_size: int


@dataclass(frozen=True)
class Volume:
    name: str
    path: str


def _lookup_pool(conn: libvirt.virConnect, name: str) -> libvirt.virStoragePool:
    try:
        return conn.storagePoolLookupByName(name)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None


def lookup_volume(conn: libvirt.virConnect, pool_name: str,
                  name: str) -> libvirt.virStorageVol:
    """A volume of a pool by name (VolumeNotFound, PoolNotFound... translated)."""
    try:
        return _lookup_pool(conn, pool_name).storageVolLookupByName(name)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None


def ensure_pool(conn: libvirt.virConnect, name: str, path: str) -> str:
    """Make sure the directory pool ``name`` exists, is built, running and autostarts;
    define it at ``path`` when it is missing. Returns the pool's target path. Safe when
    several creates race to do it on a new host."""
    try:
        pool = _lookup_pool(conn, name)
    except PoolNotFound:
        try:
            pool = conn.storagePoolDefineXML(xml.build_dir_pool(name, path), 0)
        except libvirt.libvirtError as exc:
            try:  # defined meanwhile by a concurrent create?
                pool = _lookup_pool(conn, name)
            except PoolNotFound:
                raise translate(exc) from None
        try:
            pool.build(0)  # a directory pool: creates the directory if it is missing
        except libvirt.libvirtError as exc:
            if not isinstance(translate(exc), (NotSupported, InvalidState)):
                raise
    if not pool.isActive():
        try:
            pool.create(0)
        except libvirt.libvirtError as exc:
            if not pool.isActive():  # not started meanwhile by a concurrent create
                raise translate(exc) from None
    try:
        if not pool.autostart():
            pool.setAutostart(1)
    except libvirt.libvirtError as exc:
        if not isinstance(translate(exc), NotSupported):
            raise
    return xml.parse_pool(pool.XMLDesc(0)).path


def _pool_for_directory(conn: libvirt.virConnect,
                        directory: str) -> tuple[libvirt.virStoragePool, bool]:
    """An active directory pool whose target is ``directory``, and whether this call
    changed the host to get it: an existing pool (started if it was inactive), else a
    transient one made for it. The caller undoes that change with _put_back when done,
    so that looking at a file leaves nothing behind. Raises libvirtError."""
    for pool in conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_DIR):
        desc = xml.parse_pool(pool.XMLDesc(0))
        if posixpath.normpath(desc.path) == directory:
            started = not pool.isActive()
            if started:
                pool.create(0)
            try:
                pool.refresh(0)
            except libvirt.libvirtError:
                if started:
                    _put_back(pool)
                raise
            return pool, started
    digest = hashlib.sha256(directory.encode()).hexdigest()[:12]
    name = f"loucloud-images-{digest}"
    try:  # made by an inspection under way in another process: that one removes it
        pool = conn.storagePoolLookupByName(name)
        pool.refresh(0)
        return pool, False
    except libvirt.libvirtError as exc:
        if not isinstance(translate(exc), PoolNotFound):
            raise
    try:
        return conn.storagePoolCreateXML(xml.build_dir_pool(name, directory), 0), True
    except libvirt.libvirtError as exc:
        try:  # made meanwhile by a concurrent inspection?
            return conn.storagePoolLookupByName(name), False
        except libvirt.libvirtError:
            raise exc from None


def _put_back(pool: libvirt.virStoragePool) -> None:
    """Stop a pool _pool_for_directory started (a transient one goes away with it)."""
    try:
        pool.destroy()
    except libvirt.libvirtError as exc:
        log.warning("storage pool %s not stopped after an image check: %s", pool.name(),
                    translate(exc))


def inspect_image(conn: libvirt.virConnect, path: str) -> ImageInfo | None:
    """Format and virtual size of the image file at ``path`` on this host, or None
    when there is no such file. Raises ImageProblem when the file is unusable. The host
    is left as it was: a pool started or made to look is stopped again."""
    directory, filename = posixpath.split(path)
    try:
        pool, changed = _pool_for_directory(conn, directory)
    except libvirt.libvirtError as exc:
        err = translate(exc)
        if "No such file" in str(err) or "does not exist" in str(err):
            return None
        raise err from None
    try:
        return _inspect_volume(pool, path, filename)
    finally:
        if changed:
            _put_back(pool)


def _inspect_volume(pool: libvirt.virStoragePool, path: str,
                    filename: str) -> ImageInfo | None:
    try:
        vol = pool.storageVolLookupByName(filename)
    except libvirt.libvirtError as exc:
        err = translate(exc)
        if isinstance(err, VolumeNotFound):
            return None
        raise err from None
    desc = xml.parse_volume(vol.XMLDesc(0))
    if desc.kind == "dir":
        raise ImageProblem(f"{path} is a directory, not a disk image.")
    if desc.backing_path:
        raise ImageProblem(f"{path} has a backing file ({desc.backing_path}); use a "
                           "standalone image.")
    fmt = desc.format or "raw"
    if fmt not in IMAGE_FORMATS:
        raise ImageProblem(f"{path} is a {fmt} file; LouCloud takes qcow2 or raw images.")
    return ImageInfo(desc.path or path, fmt, desc.capacity)


def create_overlay(conn: libvirt.virConnect, pool_name: str, name: str, capacity: int,
                   backing_path: str, backing_format: str) -> Volume:
    """Create a qcow2 volume ``name`` in the pool, backed by the image. Creating it does
    not read or copy the image, so its time does not grow with the image's size."""
    pool = _lookup_pool(conn, pool_name)
    vol = pool.createXML(xml.build_overlay_volume(name, capacity, backing_path,
                                                  backing_format), 0)
    return Volume(vol.name(), vol.path())


def create_blank(conn: libvirt.virConnect, pool_name: str, name: str,
                 capacity: int) -> Volume:
    """An empty qcow2 volume ``name`` of ``capacity`` bytes (nothing allocated yet)."""
    pool = _lookup_pool(conn, pool_name)
    try:
        vol = pool.createXML(xml.build_blank_volume(name, capacity), 0)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None
    return Volume(vol.name(), vol.path())


def delete_volume(conn: libvirt.virConnect, pool_name: str, name: str) -> bool:
    """Delete the volume if it exists (no pool: no volume). Returns whether there was
    one to delete."""
    try:
        pool = _lookup_pool(conn, pool_name)
    except PoolNotFound:
        return False
    for attempt in range(2):
        try:
            vol = pool.storageVolLookupByName(name)
            break
        except libvirt.libvirtError as exc:
            err = translate(exc)
            if not isinstance(err, VolumeNotFound):
                raise err from None
            if attempt:
                return False
            # A create that failed half-way may have left a file libvirt did not list.
            pool.refresh(0)
    vol.delete(0)
    return True


def upload_volume(conn: libvirt.virConnect, pool_name: str, name: str, data: bytes) -> Volume:
    """A new raw volume ``name`` holding ``data``, written through libvirt's volume
    upload stream (the same for a remote host: no file copy outside libvirt). Nothing is
    left when it fails half-way."""
    return _upload(conn, pool_name, name, len(data), io.BytesIO(data).read, refresh=False)


def upload_file(conn: libvirt.virConnect, pool_name: str, name: str, path: str,
                progress=None) -> Volume:
    """A new volume ``name`` with the bytes of the local file ``path`` (an image of any
    format: the pool is refreshed afterwards, so libvirt reads its format from its
    header), streamed without holding it in memory. ``progress(done, total)`` is
    called as it goes. Nothing is left when it fails half-way."""
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise VirtError(str(exc)) from None
    with f:
        size = os.fstat(f.fileno()).st_size
        return upload_stream(conn, pool_name, name, size,
                             GrowingFile.whole(f.fileno(), size).read, progress)


def upload_stream(conn: libvirt.virConnect, pool_name: str, name: str, size: int, read,
                  progress=None) -> Volume:
    """Like upload_file, from ``read(n)`` (which may wait for its bytes: a file that is
    still arriving) instead of a file's path."""
    return _upload(conn, pool_name, name, size, read, progress)


def _open_upload(conn: libvirt.virConnect, vol: libvirt.virStorageVol, size: int):
    """The volume's upload stream, sparse when the host's libvirt takes it (holes are
    then sent as their length and not written: the copy stays as sparse as the file);
    otherwise a plain one, holes sent as zeros. Returns (stream, sparse)."""
    stream = conn.newStream(0)
    try:
        vol.upload(stream, 0, size, libvirt.VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM)
        return stream, True
    except libvirt.libvirtError as exc:
        if exc.get_error_code() not in (libvirt.VIR_ERR_INVALID_ARG,
                                        libvirt.VIR_ERR_NO_SUPPORT):
            raise
    try:
        stream.abort()
    except libvirt.libvirtError:
        pass
    stream = conn.newStream(0)
    vol.upload(stream, 0, size, 0)
    return stream, False


def _send(stream: libvirt.virStream, data: bytes) -> None:
    sent = stream.send(data)  # whole, as a rule: no copy of the MiB
    while sent < len(data):
        data = data[sent:]
        sent = stream.send(data)


def _send_hole(stream: libvirt.virStream, length: int, sparse: bool) -> None:
    if sparse:
        stream.sendHole(length, 0)
        return
    while length:
        piece = min(length, PIECE)
        _send(stream, zeros(piece))
        length -= piece


def _upload(conn: libvirt.virConnect, pool_name: str, name: str, size: int, read,
            progress=None, *, refresh: bool = True) -> Volume:
    """A new volume of ``size`` bytes from ``read(n)`` through the upload stream, 1 MiB
    at a time. ``read`` gives bytes, or an int: that many zero bytes (a hole of the
    file, not read); a block of zeros it gives is sent as a hole too, so that only data
    crosses the connection and reaches the host's disk. With ``refresh`` the pool is
    refreshed after, so that libvirt reads the volume's format from its header (a raw
    seed needs no such round trips).
    Deleted again when anything fails: a libvirt or file error, or the caller's
    ``progress`` raising to stop it."""
    pool = _lookup_pool(conn, pool_name)
    try:
        vol = pool.createXML(xml.build_raw_volume(name, size), 0)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None
    stream = None
    try:
        stream, sparse = _open_upload(conn, vol, size)
        done = hole = 0
        while True:
            piece = read(PIECE)
            if isinstance(piece, int) or (piece and is_zero(piece)):
                length = piece if isinstance(piece, int) else len(piece)
                hole += length  # one message for a run of holes
            elif not piece:
                break
            else:
                if hole:
                    _send_hole(stream, hole, sparse)
                    hole = 0
                _send(stream, piece)
                length = len(piece)
            done += length
            if progress:
                progress(done, size)
        if hole:
            _send_hole(stream, hole, sparse)
        stream.finish()
        if refresh:
            pool.refresh(0)
            vol = pool.storageVolLookupByName(name)
    except BaseException as exc:  # a libvirt or file error, or the caller's progress stops it
        try:  # a host that went away mid-stream (libvirtd killed, link reset) is
            alive = conn.isAlive() == 1  # unreachable, not a failed upload: retried
        except libvirt.libvirtError:
            alive = False
        if stream is not None:
            try:
                stream.abort()
            except libvirt.libvirtError:
                pass
        try:
            vol.delete(0)
        except libvirt.libvirtError:
            log.warning("volume %s not removed after a failed upload", name)
        if isinstance(exc, libvirt.libvirtError):
            raise translate(exc, alive=alive) from None
        if isinstance(exc, OSError):
            raise VirtError(str(exc)) from None
        raise
    return Volume(vol.name(), vol.path())


def volume_info(conn: libvirt.virConnect, pool_name: str, name: str) -> ImageInfo | None:
    """Format and size of a volume of the pool (None: no such volume)."""
    try:
        pool = _lookup_pool(conn, pool_name)
    except PoolNotFound:
        return None
    try:
        vol = pool.storageVolLookupByName(name)
    except libvirt.libvirtError as exc:
        err = translate(exc)
        if isinstance(err, VolumeNotFound):
            return None
        raise err from None
    desc = xml.parse_volume(vol.XMLDesc(0))
    return ImageInfo(desc.path, desc.format or "raw", desc.capacity)
