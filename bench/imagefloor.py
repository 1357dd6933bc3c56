"""10. Images in, the floor: a bare script that writes a file to the hosts with
libvirt's volume upload stream (every byte, or its data and holes with the sparse
stream), and LouCloud's copy code alone, for bench/images.py."""
from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

import libvirt

MiB = 1 << 20
FLOOR_POOL = "bench-floor"


def _floor_pool(conn: libvirt.virConnect) -> libvirt.virStoragePool:
    try:
        pool = conn.storagePoolLookupByName(FLOOR_POOL)
    except libvirt.libvirtError:
        pool = conn.storagePoolDefineXML(
            f"<pool type='dir'><name>{FLOOR_POOL}</name><target>"
            f"<path>/var/lib/libvirt/{FLOOR_POOL}</path></target></pool>", 0)
        pool.build(0)
    if not pool.isActive():
        pool.create(0)
    return pool


def _send_file(stream: libvirt.virStream, f, length: int) -> None:
    while length:
        chunk = f.read(min(MiB, length))
        length -= len(chunk)
        view = memoryview(chunk)
        while view:
            view = view[stream.send(view.tobytes()):]


def _send_sparse(stream: libvirt.virStream, f, size: int) -> None:
    """The file's data sections (SEEK_DATA to SEEK_HOLE) sent, its holes said."""
    offset = 0
    while offset < size:
        try:
            data = os.lseek(f.fileno(), offset, os.SEEK_DATA)
        except OSError:  # no data after it: a hole to the end
            data = size
        if data > offset:
            stream.sendHole(data - offset, 0)
            offset = data
            continue
        end = os.lseek(f.fileno(), offset, os.SEEK_HOLE)
        f.seek(offset)
        _send_file(stream, f, end - offset)
        offset = end


def _floor_upload(conn: libvirt.virConnect, path: Path, name: str,
                  sparse: bool = False) -> None:
    """The file to a new volume through the upload stream: every byte (the issue's
    floor), or with ``sparse`` its data only, its holes (SEEK_HOLE/SEEK_DATA) sent as
    holes, as `virsh vol-upload --sparse` does."""
    size = path.stat().st_size
    pool = _floor_pool(conn)
    vol = pool.createXML(f"<volume><name>{name}</name><capacity unit='bytes'>{size}"
                         "</capacity><target><format type='raw'/></target></volume>", 0)
    stream = conn.newStream(0)
    vol.upload(stream, 0, size,
               libvirt.VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM if sparse else 0)
    with open(path, "rb") as f:
        if sparse:
            _send_sparse(stream, f, size)
        else:
            _send_file(stream, f, size)
    stream.finish()


def _floor_delete(conn: libvirt.virConnect, name: str) -> None:
    with contextlib.suppress(libvirt.libvirtError):
        _floor_pool(conn).storageVolLookupByName(name).delete(0)


def _at_once(upload, targets) -> float:
    """Run ``upload(target)`` for every target at once, a thread each; the seconds until
    the last one ended (the first error is raised)."""
    errors: list[BaseException] = []

    def one(target) -> None:
        try:
            upload(target)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)
    threads = [threading.Thread(target=one, args=(t,)) for t in targets]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - start


def floor(hosts, path: Path, name: str, sparse: bool = False) -> float:
    """Seconds to write ``path`` to every host at once (connections opened before)."""
    conns = [libvirt.open(h.uri) for h in hosts]
    try:
        for conn in conns:
            _floor_delete(conn, name)
        return _at_once(lambda conn: _floor_upload(conn, path, name, sparse), conns)
    finally:
        for conn in conns:
            _floor_delete(conn, name)
            conn.close()


def copy_code(hosts, path: Path, name: str) -> float:
    """The same writes through LouCloud's own copy code, in this process: the host pool
    (a kept connection per host, the libvirt event loop, keepalive) and
    virt.storage.upload_file, a thread per host, as the worker's image.copy runs them;
    no database, no queue. It tells the worker's own cost from the libvirt path's."""
    from loucloud.virt import storage
    from loucloud.virt.connections import HostPool

    pool = HostPool()
    target = f"/var/lib/libvirt/{FLOOR_POOL}"
    try:
        for h in hosts:
            pool.call(h.uri, storage.ensure_pool, FLOOR_POOL, target, timeout=60)
            pool.call(h.uri, storage.delete_volume, FLOOR_POOL, name, timeout=60)
        return _at_once(lambda uri: pool.call(uri, storage.upload_file, FLOOR_POOL, name,
                                              str(path), lambda *_: None, timeout=3600),
                        [h.uri for h in hosts])
    finally:
        for h in hosts:
            with contextlib.suppress(Exception):
                pool.call(h.uri, storage.delete_volume, FLOOR_POOL, name, timeout=60)
        pool.close()


