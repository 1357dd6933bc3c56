"""A domain's serial line through libvirt's console stream, as one end of a local
socket pair: what the guest prints can be read from ``SerialBridge.socket`` and what is
written there reaches the guest. Nothing listens on the network; a remote host's line
comes over the libvirt connection itself.

The stream is non-blocking and driven by libvirt's event loop (running in this process:
see connections.ensure_event_loop): its readable callback moves the guest's bytes into
the pair, and a thread moves the other way."""
from __future__ import annotations

import logging
import socket
import threading
import time

import libvirt

from .errors import InvalidState, translate

log = logging.getLogger(__name__)
CHUNK = 65536
_EVENTS = (libvirt.VIR_STREAM_EVENT_READABLE | libvirt.VIR_STREAM_EVENT_ERROR |
           libvirt.VIR_STREAM_EVENT_HANGUP)


class SerialBridge:
    """The serial console of one running domain. ``close()`` ends it (also when the
    guest's side hangs up, which closes ``socket``'s peer)."""

    def __init__(self, conn: libvirt.virConnect, uuid: str):
        try:
            dom = conn.lookupByUUIDString(uuid)
            if not dom.isActive():
                raise InvalidState("the VM is not running")
            self._stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
            # FORCE: a newer console session takes the line over from an older one
            # (the browser tab someone left open), as a new VNC viewer would.
            dom.openConsole(None, self._stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
        except libvirt.libvirtError as exc:
            raise translate(exc) from None
        self.socket, self._ours = socket.socketpair()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._stream.eventAddCallback(_EVENTS, self._readable, None)
        self._writer = threading.Thread(target=self._to_guest, name=f"serial-{uuid[:8]}",
                                        daemon=True)
        self._writer.start()

    def _readable(self, stream, events, _opaque) -> None:
        # In libvirt's event thread: take everything there is, never block.
        if events & (libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP):
            self.close()
            return
        while not self._closed.is_set():
            try:
                data = stream.recv(CHUNK)
            except libvirt.libvirtError:
                self.close()
                return
            if data == -2:          # nothing more for now
                return
            if not data:            # end of the line (the domain stopped)
                self.close()
                return
            try:
                self._ours.sendall(data)
            except OSError:
                self.close()
                return

    def _to_guest(self) -> None:
        while not self._closed.is_set():
            try:
                data = self._ours.recv(CHUNK)
            except OSError:
                break
            if not data:
                break
            view = memoryview(data)
            while view and not self._closed.is_set():
                try:
                    sent = self._stream.send(view.tobytes())
                except libvirt.libvirtError:
                    self.close()
                    return
                if sent == -2:       # the stream's buffer is full: a moment
                    time.sleep(0.01)
                    continue
                view = view[sent:]
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
        for step in (self._stream.eventRemoveCallback, self._stream.abort):
            try:
                step()
            except libvirt.libvirtError:
                pass
        for sock in (self._ours, self.socket):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._ours.close()


def open_serial(conn: libvirt.virConnect, uuid: str) -> SerialBridge:
    """The running domain's serial console. Raises InvalidState (not running),
    DomainNotFound, NotSupported (a driver without consoles)."""
    return SerialBridge(conn, uuid)
