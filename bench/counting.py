"""Counting libvirt calls per host without touching the application.

While a ``CallCounter`` is installed, every public method of libvirt-python's
connection, domain, network, storage pool and volume classes is wrapped: when counting
is switched on, each call that goes to the daemon is counted against the URI of the
connection it travels on. The wrapper is installed on the classes, so it sees the
application's own connections (opened by its HostPool) as well as ours; the
application's code stays as it is."""
from __future__ import annotations

import functools
import threading
import time
import weakref
from collections import Counter
from contextlib import contextmanager

import libvirt

# Methods answered inside the client library, without a round trip to the daemon.
LOCAL = {"UUID", "UUIDString", "name", "ID", "connect", "c_pointer", "getURI", "isAlive",
         "registerCloseCallback", "unregisterCloseCallback", "setKeepAlive", "close"}
CLASSES = ("virConnect", "virDomain", "virNetwork", "virStoragePool", "virStorageVol")


class CallCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._on = False
        self._counts: Counter[tuple[str, str]] = Counter()
        self._seconds: Counter[tuple[str, str]] = Counter()
        self._uris: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._saved: list[tuple[type, str, object]] = []

    # -- installing ----------------------------------------------------------------
    def install(self) -> "CallCounter":
        for cls_name in CLASSES:
            cls = getattr(libvirt, cls_name)
            for attr, value in list(vars(cls).items()):
                if attr.startswith("_") or attr in LOCAL or not callable(value):
                    continue
                self._saved.append((cls, attr, value))
                setattr(cls, attr, self._wrap(attr, value))
        return self

    def uninstall(self) -> None:
        for cls, attr, value in reversed(self._saved):
            setattr(cls, attr, value)
        self._saved.clear()

    def _wrap(self, attr: str, method):
        counter = self

        @functools.wraps(method)
        def counted(obj, *args, **kwargs):
            if not counter._on:
                return method(obj, *args, **kwargs)
            start = time.perf_counter()
            try:
                return method(obj, *args, **kwargs)
            finally:
                counter._note(obj, attr, time.perf_counter() - start)
        return counted

    def _uri(self, obj) -> str:
        conn = obj if isinstance(obj, libvirt.virConnect) else getattr(obj, "_conn", None)
        if conn is None:
            return "?"
        try:
            return self._uris[conn]
        except KeyError:
            uri = libvirt.virConnect.getURI(conn)  # answered locally
            self._uris[conn] = uri
            return uri

    def _note(self, obj, attr: str, seconds: float) -> None:
        uri = self._uri(obj)
        with self._lock:
            self._counts[(uri, attr)] += 1
            self._seconds[(uri, attr)] += seconds

    # -- counting ------------------------------------------------------------------
    @contextmanager
    def counting(self, seconds: dict | None = None):
        """Count the calls made inside the block (any thread); yields a dict that is
        filled on exit: {uri: {method: count}}. ``seconds``, if given, is filled the
        same way with the time spent in each method."""
        result: dict[str, dict[str, int]] = {}
        with self._lock:
            self._counts.clear()
            self._seconds.clear()
            self._on = True
        try:
            yield result
        finally:
            with self._lock:
                self._on = False
                for (uri, attr), n in self._counts.items():
                    result.setdefault(uri, {})[attr] = n
                    if seconds is not None:
                        seconds.setdefault(uri, {})[attr] = self._seconds[(uri, attr)]
                self._counts.clear()
                self._seconds.clear()

    @contextmanager
    def paused(self):
        """Calls made inside the block are not counted (the benchmark's own polls)."""
        on, self._on = self._on, False
        try:
            yield
        finally:
            self._on = on


def per_host(result: dict[str, dict[str, int]], uris) -> list[int]:
    """Total calls for each of ``uris`` (0 for a host not called at all)."""
    return [sum(result.get(uri, {}).values()) for uri in uris]
