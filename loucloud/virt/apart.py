"""A patient call's connection of its own (``HostPool.call(..., patient=True)``): a verb
that writes or reads a VM's whole memory (a memory snapshot, a revert, a snapshot's
delete, Suspend to disk) may take minutes, and calls that share a libvirt connection
with such a call wait behind it: measured on the lab (libvirt 9.0's remote client, a
managed save waiting on its QEMU), 5 s for each of the host's page queries on the
same connection, none on another. So the long verb gets a connection opened for it
and closed after, and the host's kept connection goes on serving pages and other
actions. The test driver (test:///) keeps a host's state per connection and runs
in this process: there, a patient call runs on the kept connection."""
from __future__ import annotations

import logging
import threading
from typing import Callable, TypeVar

import libvirt

from .errors import HostUnavailable, NoAnswer, NotSupported, open_failure, translate

log = logging.getLogger(__name__)
T = TypeVar("T")


def in_process(uri: str) -> bool:
    """libvirt's test driver: a hypervisor inside this process, one per connection."""
    return uri.startswith("test:")


def lib_version(conn: libvirt.virConnect) -> int:
    """The small call that tells whether a host answers."""
    return conn.getLibVersion()


def run_apart(uri: str, fn: Callable[..., T], args: tuple, reached: threading.Event,
              keepalive: tuple[int, int]) -> T:
    """``fn(conn, *args)`` on a new connection to ``uri``, closed after. ``reached`` is
    set once the connection is open (before that, nothing was done: HostUnavailable).
    A connection that fails under the call raises NoAnswer: it was under way."""
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise open_failure(uri, exc) from None
    reached.set()
    try:
        try:
            conn.setKeepAlive(*keepalive)   # a host that dies ends the call
        except libvirt.libvirtError as exc:
            if not isinstance(translate(exc), NotSupported):
                log.warning("keepalive not set on %s: %s", uri, exc)
        return fn(conn, *args)
    except libvirt.libvirtError as exc:
        err = translate(exc, alive=_alive(conn))
        if isinstance(err, HostUnavailable):
            err = NoAnswer(str(err), err.code)
        raise err from None
    except HostUnavailable as exc:
        if isinstance(exc, NoAnswer):
            raise
        raise NoAnswer(str(exc), exc.code) from None
    finally:
        try:
            conn.close()
        except libvirt.libvirtError:
            pass


def _alive(conn: libvirt.virConnect) -> bool:
    try:
        return conn.isAlive() == 1
    except libvirt.libvirtError:
        return False
