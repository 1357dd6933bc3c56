"""The process's libvirt connections (one HostPool per app and process) and the face
of each host, bound by the waits that Settings give: services reach a host only
through ``hypervisor(host)``."""
from __future__ import annotations

import os
import threading

from flask import current_app

from ..models import Host
from ..virt import HostPool
from ..virt.driver import Bounds, Hypervisor
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


def bounds() -> Bounds:
    """How long a page (query) and an action wait for one host, and per GiB of a VM's
    memory a verb that walks all of it (Settings)."""
    settings = get_settings()
    return Bounds(query=float(settings.host_timeout), action=float(settings.action_timeout),
                  per_gib=float(settings.memory_timeout_per_gib))


def hypervisor(host: Host) -> Hypervisor:
    """The face of a registered host."""
    return Hypervisor(pool(), host.uri, bounds(), host.name)


def hypervisor_at(uri: str) -> Hypervisor:
    """The face of a host by URI alone (one being added, before it has a row)."""
    return Hypervisor(pool(), uri, bounds())
