"""One libvirt connection per host, per process: opened on first use, kept and reused.

Every call on a host is bounded in time. libvirt has no connect timeout and a hung host
(a frozen libvirtd, a dropped link) blocks a call for minutes, so calls run in worker
threads and the caller waits at most its ``timeout``:

* the first failure marks the host offline, with the time and the reason;
* while a host is offline, each call starts a new connect (unless one is still under
  way) and waits only ``offline_grace`` for it: a refused connect fails in a moment, a
  hanging one goes on in the background and later calls don't wait for it at all. A dead
  host costs a page almost nothing after the first time, and a host that is back shows
  online again by itself;
* a call that outlived its bound leaves the host "stuck": further calls fail at once
  until it returns or keepalive closes the connection;
* except a *patient* call: a verb that writes or reads a VM's whole memory, bounded by
  the VM's size, on a connection of its own (virt/apart.py says why). When it outlives
  its bound, or its connection dies under it, the host is asked something small on the
  kept connection: if it answers, it stays online and usable and the verb goes on in
  its thread; either way the caller gets NoAnswer (the outcome is unknown).

libvirt's event loop runs in a daemon thread (started before the first open), which is
what makes keepalive and the close callback work.
"""
from __future__ import annotations

import logging
import os
import functools
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, TypeVar

import libvirt

from .apart import in_process, lib_version, run_apart
from .errors import (HostUnavailable, NoAnswer, NotSupported, VirtError, open_failure,
                     translate)

log = logging.getLogger(__name__)
T = TypeVar("T")

_event_lock = threading.Lock()
_event_loop_pid: int | None = None


def _ignore_libvirt_error(_ctx, _err) -> None:
    """libvirt prints every error on stderr by default; ours are raised instead."""


def ensure_event_loop() -> None:
    """Register libvirt's default event implementation and run it in a daemon thread,
    once per process (a forked child starts its own)."""
    global _event_loop_pid
    with _event_lock:
        if _event_loop_pid == os.getpid():
            return
        libvirt.registerErrorHandler(_ignore_libvirt_error, None)
        libvirt.virEventRegisterDefaultImpl()
        thread = threading.Thread(target=_run_event_loop, name="libvirt-events", daemon=True)
        thread.start()
        _event_loop_pid = os.getpid()


def _run_event_loop() -> None:
    while True:
        if libvirt.virEventRunDefaultImpl() < 0:
            time.sleep(0.1)


@dataclass(frozen=True)
class HostState:
    """What this process knows of a host. ``online`` is None before the first contact."""
    online: bool | None
    since: datetime | None
    error: str | None


class _Host:
    def __init__(self, uri: str):
        self.uri = uri
        self.lock = threading.Lock()
        self.conn: libvirt.virConnect | None = None
        self.connecting: Future | None = None
        self.stuck = 0
        self.online: bool | None = None
        self.since: datetime | None = None
        self.error: str | None = None

    # Both called with self.lock held.
    def mark_online(self) -> None:
        if self.online is not True:
            self.online, self.since = True, _now()
        self.error = None

    def mark_offline(self, reason: str) -> None:
        if self.online is not False:
            self.online, self.since = False, _now()
            log.warning("host %s is offline: %s", self.uri, reason)
        self.error = reason


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class HostPool:
    """The connections of this process to every host, keyed by libvirt URI."""

    def __init__(self, *, keepalive_interval: int = 5, keepalive_count: int = 3,
                 offline_grace: float = 0.25, probe_bound: float = 5.0,
                 max_workers: int = 64):
        self.keepalive_interval = keepalive_interval
        self.keepalive_count = keepalive_count
        self.offline_grace = offline_grace
        self.probe_bound = probe_bound
        self._hosts: dict[str, _Host] = {}
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="libvirt")
        self._closed = False
        # Calls handed to each host (observability: what a page or a cycle costs).
        self.calls: Counter[str] = Counter()

    # -- public API ------------------------------------------------------------------
    def call(self, uri: str, fn: Callable[..., T], *args: Any, timeout: float,
             patient: bool = False) -> T:
        """Run ``fn(conn, *args)`` on the host's connection and return its result.

        Raises HostUnavailable when the host cannot be reached or does not answer within
        ``timeout`` seconds, or the VirtError that ``fn`` raised (libvirt errors are
        translated). A ``patient`` call runs on a connection of its own; when it was
        made and outlives ``timeout``, or loses its connection, it raises NoAnswer, and
        takes the host offline only when the host does not answer a small call either
        (see the module's text; on the test driver it shares the kept connection)."""
        if patient and not in_process(uri):
            reached = threading.Event()
            future = self._submit_apart(uri, fn, args, reached)
            return self._wait(uri, future, time.monotonic() + timeout, timeout, reached)
        future, wait_until = self._submit(uri, fn, args, time.monotonic() + timeout)
        return self._wait(uri, future, wait_until, timeout, patient)

    def start(self, uri: str, fn: Callable[..., T], *args: Any,
              timeout: float) -> Callable[[], T]:
        """Start ``fn(conn, *args)`` on the host and return at once: calling what this
        returns waits for the result as ``call`` would (the same bound, the same errors)."""
        future, wait_until = self._submit(uri, fn, args, time.monotonic() + timeout)
        return functools.partial(self._wait, uri, future, wait_until, timeout)

    def call_many(self, uris: Iterable[str], fn: Callable[..., T], *args: Any,
                  timeout: float) -> dict[str, T | VirtError]:
        """Run ``fn(conn, *args)`` on several hosts in parallel. Returns, per URI, the
        result or the VirtError it ended with; never waits more than ``timeout``."""
        return self.call_each({uri: (fn, args) for uri in uris}, timeout=timeout)

    def call_each(self, calls: dict[str, tuple[Callable[..., T], tuple]], *,
                  timeout: float) -> dict[str, T | VirtError]:
        """Like call_many, with a function and arguments of its own for each URI."""
        deadline = time.monotonic() + timeout
        pending = {uri: self._submit(uri, fn, args, deadline)
                   for uri, (fn, args) in calls.items()}
        results: dict[str, T | VirtError] = {}
        for uri, (future, wait_until) in pending.items():
            try:
                results[uri] = self._wait(uri, future, wait_until, timeout)
            except VirtError as exc:
                results[uri] = exc
        return results

    def state(self, uri: str) -> HostState:
        host = self._hosts.get(uri)
        if host is None:
            return HostState(None, None, None)
        with host.lock:
            return HostState(host.online, host.since, host.error)

    def forget(self, uri: str) -> None:
        """Close and drop the connection to a host (removed, or its URI changed)."""
        with self._lock:
            host = self._hosts.pop(uri, None)
        if host is not None:
            with host.lock:
                conn, host.conn = host.conn, None
            if conn is not None:
                self._dispose(conn)

    def close(self) -> None:
        """Close every connection; the pool can't be used afterwards."""
        self._closed = True
        for uri in list(self._hosts):
            self.forget(uri)
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- internals -------------------------------------------------------------------
    def _host(self, uri: str) -> _Host:
        if self._closed:
            raise HostUnavailable("the connection pool is closed")
        with self._lock:
            host = self._hosts.get(uri)
            if host is None:
                host = self._hosts[uri] = _Host(uri)
            return host

    def _submit(self, uri: str, fn, args, deadline: float) -> tuple[Future, float]:
        """Start ``fn`` on the host without waiting. Returns the future of its result and
        the moment up to which a caller should wait for it."""
        host = self._host(uri)
        self.calls[uri] += 1
        with host.lock:
            if host.stuck:
                return _failed(HostUnavailable(
                    host.error or "the host is not answering")), deadline
            if host.conn is not None:
                return self._executor.submit(self._run, host, host.conn, fn, args), deadline
            known_offline = host.online is False
            connecting = host.connecting
            if connecting is None:
                connecting = host.connecting = self._executor.submit(self._open, host)
            elif known_offline:
                # An earlier connect still hangs: don't wait for it again.
                return _failed(HostUnavailable(host.error or "the host is offline")), deadline

        result: Future = Future()

        def connected(done: Future) -> None:
            exc = done.exception()
            if exc is not None:
                result.set_exception(exc)
                return
            try:
                inner = self._executor.submit(self._run, host, done.result(), fn, args)
            except RuntimeError as exc:  # executor shut down
                result.set_exception(HostUnavailable(str(exc)))
                return
            inner.add_done_callback(lambda f: _copy_result(f, result))

        connecting.add_done_callback(connected)
        if known_offline:
            deadline = min(deadline, time.monotonic() + self.offline_grace)
        return result, deadline

    def _wait(self, uri: str, future: Future, wait_until: float, timeout: float,
              patient: bool | threading.Event = False):
        """The result of ``future`` within its bound. ``patient``: True for a patient
        call on the kept connection, the Event its own connection sets once it is open
        (a call never made is no unknown outcome)."""
        try:
            return future.result(timeout=max(0.0, wait_until - time.monotonic()))
        except FutureTimeout:
            pass
        host = self._host(uri)
        apart = isinstance(patient, threading.Event)
        if apart and not patient.is_set():   # its connection did not even open
            raise HostUnavailable(f"no connection within {timeout:g} s (nothing was done)")
        if patient:
            if self._answers(uri):
                # A long verb still at work on a host that answers: not offline, not
                # stuck (it goes on in its thread); its outcome is unknown.
                raise NoAnswer(f"no answer within {timeout:g} s (the host answers other "
                               "calls: it may still be at it)")
            if apart:          # the probe's own wait took the host offline
                raise NoAnswer(self.state(uri).error or f"no answer within {timeout:g} s")
        with host.lock:
            if host.conn is None:
                host.mark_offline(f"no answer within {timeout:g} s")
            else:
                # The connection exists but this call hangs: fail further calls at once
                # until it returns (or keepalive gives up on the connection).
                host.mark_offline(f"the host did not answer within {timeout:g} s")
                host.stuck += 1
                future.add_done_callback(lambda _f: self._unstick(host))
            reason = host.error
        raise (NoAnswer if patient else HostUnavailable)(reason)

    def _answers(self, uri: str) -> bool:
        """Whether the host answers a small call on the kept connection within
        ``probe_bound`` (a failure takes it offline, as any call's)."""
        try:
            self.call(uri, lib_version, timeout=self.probe_bound)
            return True
        except VirtError:
            return False

    def _submit_apart(self, uri: str, fn, args, reached: threading.Event) -> Future:
        """Start a patient call on a connection of its own (see the module's text)."""
        host = self._host(uri)
        self.calls[uri] += 1
        with host.lock:
            if host.stuck:
                return _failed(HostUnavailable(host.error or "the host is not answering"))
        return self._executor.submit(run_apart, uri, fn, args, reached,
                                     (self.keepalive_interval, self.keepalive_count))

    def _unstick(self, host: _Host) -> None:
        with host.lock:
            host.stuck = max(0, host.stuck - 1)

    def _open(self, host: _Host) -> libvirt.virConnect:
        ensure_event_loop()
        try:
            conn = libvirt.open(host.uri)
        except libvirt.libvirtError as exc:
            err = open_failure(host.uri, exc)
            with host.lock:
                host.connecting = None
                host.mark_offline(str(err))
            raise err from None
        try:
            conn.setKeepAlive(self.keepalive_interval, self.keepalive_count)
        except libvirt.libvirtError as exc:
            if not isinstance(translate(exc), NotSupported):
                log.warning("keepalive not set on %s: %s", host.uri, exc)
        try:
            conn.registerCloseCallback(self._on_close, host)
        except libvirt.libvirtError as exc:
            if not isinstance(translate(exc), NotSupported):
                log.warning("close callback not set on %s: %s", host.uri, exc)
        with host.lock:
            host.conn, host.connecting = conn, None
            host.mark_online()
        return conn

    def _on_close(self, conn, reason: int, host: _Host) -> None:
        # Runs in libvirt's event thread: only drop the connection here.
        reasons = {libvirt.VIR_CONNECT_CLOSE_REASON_ERROR: "connection error",
                   libvirt.VIR_CONNECT_CLOSE_REASON_EOF: "the host closed the connection",
                   libvirt.VIR_CONNECT_CLOSE_REASON_KEEPALIVE: "keepalive timed out"}
        with host.lock:
            if host.conn is conn:
                host.conn = None
                host.mark_offline(reasons.get(reason, "connection closed"))
        if not self._closed:
            try:
                self._executor.submit(self._dispose, conn)
            except RuntimeError:
                pass

    def _dispose(self, conn: libvirt.virConnect) -> None:
        """Let go of a connection. It is not closed here: a call that hangs on it may
        still be using it in another thread. libvirt-python closes it when the last
        reference goes (its __del__), i.e. when that call has returned."""
        try:
            conn.unregisterCloseCallback()
        except libvirt.libvirtError:
            pass

    def _run(self, host: _Host, conn: libvirt.virConnect, fn, args):
        try:
            result = fn(conn, *args)
        except libvirt.libvirtError as exc:
            alive = _is_alive(conn)
            err = translate(exc, alive=alive)
            if not alive:
                self._drop(host, conn, str(err))
            raise err from None
        except HostUnavailable as exc:
            if not _is_alive(conn):
                self._drop(host, conn, str(exc))
            raise
        with host.lock:
            if host.conn is conn:
                host.mark_online()
        return result

    def _drop(self, host: _Host, conn, reason: str) -> None:
        with host.lock:
            if host.conn is conn:
                host.conn = None
                host.mark_offline(reason)
        try:
            self._executor.submit(self._dispose, conn)
        except RuntimeError:  # shutting down
            pass


def _is_alive(conn: libvirt.virConnect) -> bool:
    try:
        return conn.isAlive() == 1
    except libvirt.libvirtError:
        return False


def _failed(exc: Exception) -> Future:
    future: Future = Future()
    future.set_exception(exc)
    return future


def _copy_result(src: Future, dst: Future) -> None:
    exc = src.exception()
    if exc is not None:
        dst.set_exception(exc)
    else:
        dst.set_result(src.result())
