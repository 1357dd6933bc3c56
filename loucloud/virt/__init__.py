"""Everything LouCloud says to hypervisors. The only package that imports libvirt; it
knows nothing of Flask, the database or the configuration: settings are passed in."""
from .connections import HostPool, HostState  # noqa: F401
from .errors import (  # noqa: F401
                     AgentUnavailable,
                     AlreadyExists,
                     DomainNotFound,
                     HostUnavailable,
                     InvalidState,
                     NetworkNotFound,
                     NoAnswer,
                     NoSpace,
                     NotSupported,
                     PoolFull,
                     PoolNotFound,
                     VirtError,
                     VolumeNotFound,
)
