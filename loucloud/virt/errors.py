"""LouCloud's hypervisor exceptions. ``libvirtError`` is translated here, once."""
from __future__ import annotations

from urllib.parse import urlsplit

import libvirt


class VirtError(Exception):
    """A hypervisor operation failed; ``str(e)`` is libvirt's reason in plain words."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


class HostUnavailable(VirtError):
    """The host cannot be reached, did not answer in time, or dropped the connection."""


class NoAnswer(HostUnavailable):
    """A patient call (a verb that walks a VM's whole memory) was made and got no answer
    within its bound, or lost its connection meanwhile: what it did is unknown, and the
    host may still be at it. The host is taken offline only when it does not answer
    other calls either (HostPool.call)."""


class NotSupported(VirtError):
    """The host's driver does not offer this function (the test driver lacks some)."""


class DomainNotFound(VirtError):
    pass


class PoolNotFound(VirtError):
    pass


class VolumeNotFound(VirtError):
    pass


class NetworkNotFound(VirtError):
    pass


class InvalidState(VirtError):
    """The operation does not fit the object's current state (e.g. start a running VM)."""


class AlreadyExists(VirtError):
    pass


class NoSpace(VirtError):
    """The storage pool or the host has no room for what was asked."""


class PoolFull(NoSpace):
    """LouCloud's own look before a data disk: the pool has ``free`` bytes, fewer than
    the ``needed`` (data disks are not overcommitted)."""

    def __init__(self, free: int, needed: int):
        super().__init__(f"the pool has {free} bytes free, {needed} needed")
        self.free, self.needed = free, needed


class AgentUnavailable(VirtError):
    """The guest has no QEMU guest agent answering (not installed, not started yet)."""


_NOT_FOUND = {
    libvirt.VIR_ERR_NO_DOMAIN: DomainNotFound,
    libvirt.VIR_ERR_NO_STORAGE_POOL: PoolNotFound,
    libvirt.VIR_ERR_NO_STORAGE_VOL: VolumeNotFound,
    libvirt.VIR_ERR_NO_NETWORK: NetworkNotFound,
}

# The guest agent is missing or not answering.
_AGENT_CODES = {getattr(libvirt, name) for name in (
    "VIR_ERR_AGENT_UNRESPONSIVE", "VIR_ERR_AGENT_UNSYNCED", "VIR_ERR_AGENT_COMMAND_TIMEOUT")
    if hasattr(libvirt, name)}

# Errors that mean the connection itself is gone or unusable.
_CONNECTION_CODES = {
    libvirt.VIR_ERR_NO_CONNECT,
    libvirt.VIR_ERR_INVALID_CONN,
    libvirt.VIR_ERR_RPC,
    libvirt.VIR_ERR_AUTH_FAILED,
    libvirt.VIR_ERR_AUTH_CANCELLED,
    libvirt.VIR_ERR_AUTH_UNAVAILABLE,
}


def reason(err: libvirt.libvirtError) -> str:
    """libvirt's reason on one line. A parse error (VIR_ERR_XML_DETAIL) quotes the line
    of the document it could not parse, and points at it, on the lines after its first:
    only the first is kept."""
    message = err.get_error_message() or str(err)
    if err.get_error_code() == libvirt.VIR_ERR_XML_DETAIL:
        message = message.split("\n", 1)[0]
    return message


def open_failure(uri: str, err: libvirt.libvirtError) -> HostUnavailable:
    """Why a connection to ``uri`` could not be opened. The test driver reads the file
    of a test:///<path> URI in this process, and libvirt's XML errors about it quote
    what they could not parse (of any file this process can read: a secret key, a
    password file): those are replaced by one plain sentence."""
    code = err.get_error_code()
    parts = urlsplit(uri)
    if parts.scheme == "test" and parts.path != "/default" and \
            code in (libvirt.VIR_ERR_XML_ERROR, libvirt.VIR_ERR_XML_DETAIL):
        return HostUnavailable("no such file, or not a node description for libvirt's "
                               "test driver", code)
    return HostUnavailable(reason(err), code)


def translate(err: libvirt.libvirtError, *, alive: bool = True) -> VirtError:
    """Map a libvirtError to our exception. ``alive`` is whether the connection still
    works: a system error on a dead connection is the host going away, not the operation."""
    code = err.get_error_code()
    message = reason(err)
    if code in _NOT_FOUND:
        return _NOT_FOUND[code](message, code)
    if code == libvirt.VIR_ERR_NO_SUPPORT:
        return NotSupported(message, code)
    if code in (libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_ERR_OPERATION_DENIED):
        return InvalidState(message, code)
    if code in _AGENT_CODES:
        return AgentUnavailable(message, code)
    if code in (libvirt.VIR_ERR_DOM_EXIST, libvirt.VIR_ERR_STORAGE_VOL_EXIST):
        return AlreadyExists(message, code)
    if code in _CONNECTION_CODES or (code == libvirt.VIR_ERR_SYSTEM_ERROR and not alive):
        return HostUnavailable(message, code)
    if not alive:
        return HostUnavailable(message, code)
    lowered = message.lower()
    if "no space left" in lowered or "not enough space" in lowered or "insufficient" in lowered:
        return NoSpace(message, code)
    return VirtError(message, code)
