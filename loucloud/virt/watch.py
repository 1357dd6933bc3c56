"""Watching a host: its domains' states pushed by libvirt's events instead of asked.

A ``HostWatch`` holds a connection of its own to one host (not the pool's: events must
not wait behind page calls), registered for the domain lifecycle, reboot, agent and
device-removed events. On every (re)connect it reads every domain's state in one bulk
call (the sync), then reports each event as it comes; keepalive and the close callback
tell when the host is gone, and it connects again with a growing pause. Events are
handled in a thread of the watch (never in libvirt's event loop): each becomes the
domain's state, read with one call (what libvirt says now, not what the event implies).

Everything it learns goes to the ``Sink`` it was given (the services' side, which
writes the shared store); it knows nothing of the database."""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import libvirt

from .connections import ensure_event_loop
from .domains import state_name
from .errors import open_failure, translate

log = logging.getLogger(__name__)

# Why a domain is in its state, for the common cases (libvirt's reason codes per state).
_REASONS = {
    libvirt.VIR_DOMAIN_RUNNING: {1: "booted", 2: "migrated", 3: "restored", 5: "unpaused",
                                 8: "woken up"},
    libvirt.VIR_DOMAIN_PAUSED: {1: "paused", 2: "migrating", 4: "I/O error",
                                7: "shutting down", 9: "crashed", 13: "starting up"},
    libvirt.VIR_DOMAIN_SHUTOFF: {1: "shut down", 2: "forced off", 3: "crashed",
                                 4: "migrated", 5: "saved", 6: "failed to start"},
    libvirt.VIR_DOMAIN_CRASHED: {1: "panicked"},
}
EVENTS = {
    libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE: "lifecycle",
    libvirt.VIR_DOMAIN_EVENT_ID_REBOOT: "reboot",
    libvirt.VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE: "agent",
    libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED: "device-removed",
}
GONE = "gone"  # the domain was undefined


def reason_name(state: int, reason: int) -> str:
    return _REASONS.get(state, {}).get(reason, "")


@dataclass(frozen=True)
class DomainState:
    uuid: str
    state: str        # as users read it (domains.STATES), or GONE
    reason: str
    at: float         # epoch seconds: when the event came (or the sync read it)
    event: str = ""   # the event that brought it ("" for a sync)


class Sink(Protocol):
    def synced(self, uri: str, states: dict[str, DomainState], at: float) -> None: ...
    def changed(self, uri: str, state: DomainState) -> None: ...
    def health(self, uri: str, online: bool, error: str | None) -> None: ...


def read_all(conn: libvirt.virConnect) -> dict[str, DomainState]:
    """Every domain's state and reason, in one bulk call."""
    now = time.time()
    out = {}
    for dom, values in conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE, 0):
        code = values.get("state.state", 0)
        out[dom.UUIDString()] = DomainState(dom.UUIDString(), state_name(code),
                                            reason_name(code, values.get("state.reason", 0)),
                                            now)
    return out


class HostWatch:
    """Watches one host until ``stop()``; runs in threads of its own."""

    def __init__(self, uri: str, sink: Sink, *, keepalive: tuple[int, int] = (5, 3),
                 retry: tuple[float, float] = (1.0, 30.0), open_timeout: float = 10.0):
        self.uri, self.sink = uri, sink
        self.keepalive, self.retry, self.open_timeout = keepalive, retry, open_timeout
        self.events: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._closed = threading.Event()
        self._conn: libvirt.virConnect | None = None
        self._resync = threading.Event()
        self._threads: list[threading.Thread] = []
        self.handled = 0                  # events turned into states (for figures)

    # -- threads ---------------------------------------------------------------------
    def start(self) -> HostWatch:
        ensure_event_loop()
        for target, name in ((self._run, "watch"), (self._handle, "watch-events")):
            thread = threading.Thread(target=target, name=f"{name} {self.uri}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._closed.set()
        self.events.put(None)

    def resync(self) -> None:
        """Read every domain's state again now (the periodic full sync)."""
        self._resync.set()
        self._closed.set()  # wakes the connection thread, which syncs and goes on

    def _run(self) -> None:
        pause = self.retry[0]
        while not self._stop.is_set():
            try:
                conn = self._open()
            except libvirt.libvirtError as exc:
                self.sink.health(self.uri, False, str(open_failure(self.uri, exc)))
                self._stop.wait(pause)
                pause = min(pause * 2, self.retry[1])
                continue
            except TimeoutError as exc:
                self.sink.health(self.uri, False, str(exc))
                self._stop.wait(pause)
                pause = min(pause * 2, self.retry[1])
                continue
            pause = self.retry[0]
            try:
                self._watch(conn)
            except libvirt.libvirtError as exc:
                self.sink.health(self.uri, False, str(translate(exc, alive=False)))
            finally:
                self._forget(conn)

    def _open(self) -> libvirt.virConnect:
        """A new connection, waiting at most open_timeout (a frozen host never answers)."""
        result: dict = {}

        def target():
            try:
                result["conn"] = libvirt.open(self.uri)
            except libvirt.libvirtError as exc:
                result["error"] = exc

        thread = threading.Thread(target=target, name=f"watch-open {self.uri}", daemon=True)
        thread.start()
        thread.join(self.open_timeout)
        if "error" in result:
            raise result["error"]
        if "conn" not in result:
            raise TimeoutError(f"no answer within {self.open_timeout:g} s")
        return result["conn"]

    def _watch(self, conn: libvirt.virConnect) -> None:
        conn.setKeepAlive(*self.keepalive)
        self._closed.clear()
        conn.registerCloseCallback(self._on_close, None)
        self._conn = conn
        ids = [conn.domainEventRegisterAny(None, event_id, self._on_event, name)
               for event_id, name in EVENTS.items()]
        try:
            self._sync(conn)
            self.sink.health(self.uri, True, None)
            while not self._stop.is_set():
                self._closed.wait()
                if self._resync.is_set() and not self._stop.is_set():
                    self._resync.clear()
                    self._closed.clear()
                    self._sync(conn)
                    continue
                break
            if not self._stop.is_set():
                self.sink.health(self.uri, False, "the connection was closed")
        finally:
            for callback_id in ids:
                try:
                    conn.domainEventDeregisterAny(callback_id)
                except libvirt.libvirtError:
                    pass

    def _sync(self, conn: libvirt.virConnect) -> None:
        at = time.time()
        self.sink.synced(self.uri, read_all(conn), at)

    def _forget(self, conn: libvirt.virConnect) -> None:
        self._conn = None
        try:
            conn.unregisterCloseCallback()
        except libvirt.libvirtError:
            pass

    # -- libvirt's event thread: only queue ---------------------------------------------
    def _on_event(self, conn, dom, *args) -> None:
        name = args[-1]
        detail = args[:-1]
        if name == "lifecycle" and detail and detail[0] == libvirt.VIR_DOMAIN_EVENT_UNDEFINED:
            self.events.put((dom.UUIDString(), "undefined", time.time()))
        else:
            self.events.put((dom.UUIDString(), name, time.time()))

    def _on_close(self, _conn, _reason, _opaque) -> None:
        self._closed.set()

    # -- the events' thread -------------------------------------------------------------
    def _handle(self) -> None:
        while True:
            item = self.events.get()
            if item is None:
                return
            uuid, name, at = item
            conn = self._conn
            if conn is None:
                continue  # the next sync covers it
            if name == "undefined":
                self.sink.changed(self.uri, DomainState(uuid, GONE, "", at, name))
                self.handled += 1
                continue
            try:
                code, reason = conn.lookupByUUIDString(uuid).state(0)
            except libvirt.libvirtError:
                continue  # gone meanwhile (its undefined event follows) or host gone
            self.sink.changed(self.uri, DomainState(uuid, state_name(code),
                                                    reason_name(code, reason), at, name))
            self.handled += 1
