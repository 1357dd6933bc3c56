"""The process's libvirt connections (one HostPool per app and process), and the
bounds that Settings give to calls on hosts."""
from __future__ import annotations

import os
import threading

from flask import current_app

from ..virt import HostPool
from .settings import get_settings

_KEY = "loucloud.hosts"
_lock = threading.Lock()


def pool() -> HostPool:
    """This process's HostPool, created on first use (a forked child makes its own)."""
    ext = current_app.extensions
    entry = ext.get(_KEY)
    if entry is None or entry[0] != os.getpid():
        with _lock:
            entry = ext.get(_KEY)
            if entry is None or entry[0] != os.getpid():
                entry = ext[_KEY] = (os.getpid(), HostPool())
    return entry[1]


def close_pool(app) -> None:
    """Close the app's connections (tests, shutdown)."""
    entry = app.extensions.pop(_KEY, None)
    if entry is not None and entry[0] == os.getpid():
        entry[1].close()


def query_timeout() -> float:
    """How long a page waits for one host."""
    return float(get_settings().host_timeout)


def action_timeout() -> float:
    """How long an action (create, start, delete...) waits for a host."""
    return float(get_settings().action_timeout)
