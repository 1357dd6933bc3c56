"""The face of one host: the only thing in ``virt`` the services call.

A ``Hypervisor`` is bound to one registered host (its libvirt URI) and to the bounds
its calls may take; each method is a verb the services need, run on the host's one
kept connection through the ``HostPool`` underneath (which bounds the wait, marks the
host offline and reconnects). Queries wait at most ``bounds.query`` seconds, actions
``bounds.action``, and the verbs that write or read a VM's whole memory (a snapshot with
memory, a revert, a snapshot's delete, Suspend to disk and the start that resumes it)
``bounds.memory`` of its size: they are patient calls (a timeout is NoAnswer, the
outcome unknown, and leaves a host that still answers online). Methods return plain
dataclasses and raise ``VirtError``s.

A new libvirt verb goes in the module of its kind (``domains``, ``storage``,
``hosts``, ``stats``) as a function taking a connection, and gets a method here; the
services never import those modules. ``on_each`` runs one verb on several hosts at once.
"""
from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Callable, Iterable, TypeVar
from urllib.parse import urlsplit

from . import domains, hosts, networks, serial, snapshots, stats, storage
from .connections import HostPool, HostState
from .domains import ALLOWED as ACTIONS_BY_STATE  # noqa: F401 (re-exported)
from .domains import DomainStatus  # noqa: F401 (re-exported)
from .changes import ChangeVerbs
from .errors import VirtError
from .migration import MigrationJob, MigrationPlan  # noqa: F401 (re-exported)
from .hosts import CpuSample, HostInfo, HostLoad, Preparation  # noqa: F401 (re-exported)
from .networks import Lease, NetworkInfo  # noqa: F401 (re-exported)
from .serial import SerialBridge  # noqa: F401 (re-exported)
from .snapshots import SnapshotInfo, SnapshotNotFound  # noqa: F401 (re-exported)
from .stats import HostCounters  # noqa: F401 (re-exported)
from .storage import ImageInfo, ImageProblem, Volume  # noqa: F401 (re-exported)
from .xml import CPU_MODES, DomainSpec, NetworkDesc, Nic  # noqa: F401 (re-exported)
from .blockdevs import DataDisks, DiskChanges, PoolVolume  # noqa: F401 (re-exported)
from .sizing import Resized, Sizes  # noqa: F401 (re-exported)
from .xml.disks import next_target  # noqa: F401 (re-exported: the next free disk target)

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Bounds:
    """How long a caller waits for a host: a query (a page), an action (a verb), and
    per GiB of a VM's memory on top of the action's for a verb that writes or reads all
    of it (``memory``)."""
    query: float
    action: float
    per_gib: float = 30.0

    def memory(self, memory_mib: int, times: int = 1) -> float:
        """The bound of a verb that walks ``memory_mib`` of a VM's memory ``times``
        times (each of several snapshots)."""
        return self.action + self.per_gib * max(1, times) * memory_mib / 1024


class Hypervisor(ChangeVerbs):
    """One host, as the services see it. Cheap to make: the connection lives in the
    pool, so a Hypervisor can be made per call."""

    def __init__(self, pool: HostPool, uri: str, bounds: Bounds, name: str = ""):
        self.pool, self.uri, self.bounds = pool, uri, bounds
        self.name = name or uri

    def __repr__(self) -> str:
        return f"<Hypervisor {self.name} {self.uri}>"

    def _query(self, fn: Callable[..., T], *args, factor: float = 1.0) -> T:
        return self.pool.call(self.uri, fn, *args, timeout=self.bounds.query * factor)

    def _act(self, fn: Callable[..., T], *args) -> T:
        return self.pool.call(self.uri, fn, *args, timeout=self.bounds.action)

    def _long(self, fn: Callable[..., T], uuid: str, *args, each_snapshot: bool = False,
              snapshot: str | None = None) -> T:
        """A verb that writes or reads the domain's whole memory (once, or once for
        each of its snapshots): bounded by ``bounds.memory`` of its <memory> (asked
        first, one query: ``memory_bound``), and patient (a timeout raises NoAnswer)."""
        timeout = self.memory_bound(uuid, each_snapshot=each_snapshot, snapshot=snapshot)
        return self.pool.call(self.uri, fn, uuid, *args, timeout=timeout, patient=True)

    def memory_bound(self, uuid: str, *, each_snapshot: bool = False,
                     snapshot: str | None = None) -> float:
        """How long a verb walking the domain's whole memory may take here: the action
        bound and ``bounds.per_gib`` for each GiB of its <memory> (its room included;
        with ``snapshot``, that snapshot's when larger: a revert)."""
        memory_mib, snapshot_count = self._query(snapshots.memory_walk, uuid, snapshot)
        return self.bounds.memory(memory_mib, snapshot_count if each_snapshot else 1)

    # -- the host --------------------------------------------------------------------
    @property
    def state(self) -> HostState:
        """What this process knows of the host (online, since when, why not)."""
        return self.pool.state(self.uri)

    def forget(self) -> None:
        """Close and drop the connection (the host was removed or never added)."""
        self.pool.forget(self.uri)

    def info(self, *, first_contact: bool = False) -> HostInfo:
        """Name, CPUs, memory, versions. A first contact may wait three bounds: the
        connection is opened then (SSH and TLS handshakes)."""
        return self._query(hosts.host_info, factor=3.0 if first_contact else 1.0)

    def load(self, previous: CpuSample | None = None, *, cpu: bool = True) -> HostLoad:
        """CPU and memory use and domain counts (``cpu=False``: memory only)."""
        return self._query(_host_load, previous, cpu)

    def prepare_for_vms(self, pool_name: str, nic_kind: str = "network",
                        nic_source: str = "default", *, want_uefi: bool = False) -> Preparation:
        """Make LouCloud's storage pool ready (under /var/lib/libvirt/<pool_name>) and
        say which domain type a new VM gets here and where its NIC can go."""
        return self._act(hosts.prepare_for_vm, pool_name, self.pool_path(pool_name),
                         nic_kind, nic_source, want_uefi)

    def ensure_pool(self, pool_name: str) -> str:
        """LouCloud's storage pool ready (defined, built, started); its directory."""
        return self._act(storage.ensure_pool, pool_name, self.pool_path(pool_name))

    def pool_path(self, pool_name: str) -> str:
        """Where LouCloud's pool lives on the host: /var/lib/libvirt/<name>, or for this
        machine's per-user daemon (qemu:///session) under the user's own data folder."""
        parts = urlsplit(self.uri)
        if parts.path.rstrip("/") == "/session" and not parts.hostname:
            return os.path.join(os.path.expanduser("~"), ".local/share/libvirt", pool_name)
        return f"/var/lib/libvirt/{pool_name}"

    def host_cpu(self) -> str | None:
        """The CPU a host-model guest gets here (a <cpu> element), None without KVM."""
        return self._query(hosts.host_cpu)

    def baseline_cpu(self, cpus: list[str]) -> str:
        """The CPU all of these hosts' CPUs can run, as libvirt computes it."""
        return self._query(hosts.baseline_cpu, cpus)

    def collect_stats(self, pool_name: str) -> HostCounters:
        """Raw counters of the host and every running domain, in one bulk call."""
        return self._query(stats.collect, pool_name)

    # -- storage ---------------------------------------------------------------------
    def inspect_image(self, path: str) -> ImageInfo | None:
        """Format and size of the file at ``path`` (None: no such file). Raises
        ImageProblem when it is not a usable image."""
        return self._act(storage.inspect_image, path)

    def create_overlay(self, pool_name: str, name: str, capacity: int, backing_path: str,
                       backing_format: str) -> Volume:
        """A qcow2 overlay volume on the image, in LouCloud's pool."""
        return self._act(storage.create_overlay, pool_name, name, capacity, backing_path,
                         backing_format)

    def delete_volume(self, pool_name: str, name: str) -> bool:
        """Delete the volume if it exists; whether there was one."""
        return self._act(storage.delete_volume, pool_name, name)

    def upload_volume(self, pool_name: str, name: str, data: bytes) -> Volume:
        """A new raw volume holding ``data``, through libvirt's upload stream."""
        return self._act(storage.upload_volume, pool_name, name, data)

    def upload_file(self, pool_name: str, name: str, path: str, progress=None, *,
                    timeout: float = 3600) -> Volume:
        """A new volume with the bytes of a local file, streamed (large images: its own,
        longer bound)."""
        return self.pool.call(self.uri, storage.upload_file, pool_name, name, path,
                              progress, timeout=timeout)

    def upload_stream(self, pool_name: str, name: str, size: int, read, progress=None, *,
                      timeout: float = 3600) -> Volume:
        """A new volume of ``size`` bytes from ``read(n)``, streamed as it gives them."""
        return self.pool.call(self.uri, storage.upload_stream, pool_name, name, size, read,
                              progress, timeout=timeout)

    def volume_info(self, pool_name: str, name: str) -> ImageInfo | None:
        """Format and virtual size of a volume of the pool (None: there is none)."""
        return self._query(storage.volume_info, pool_name, name)

    # -- networks --------------------------------------------------------------------
    def networks(self) -> list[NetworkInfo]:
        """Every libvirt network of the host, with its mode, subnet and DHCP range."""
        return self._query(networks.list_networks)

    def create_nat_network(self, name: str, subnet: str, bridge: str) -> NetworkInfo:
        """A new NAT network on ``subnet``, started and autostarted."""
        return self._act(networks.create_nat_network, name, subnet, bridge)

    def set_network_active(self, name: str, active: bool) -> NetworkInfo:
        return self._act(networks.set_active, name, active)

    def set_network_autostart(self, name: str, autostart: bool) -> NetworkInfo:
        return self._act(networks.set_autostart, name, autostart)

    def leases(self, names: list[str]) -> dict[str, list[Lease]]:
        """DHCP leases of these networks: one call per network."""
        return self._query(networks.leases, names)

    def reserve_address(self, network: str, mac: str, ip: str) -> None:
        """A fixed address for ``mac`` (a DHCP host entry). Raises AlreadyExists."""
        self._act(networks.reserve, network, mac, ip)

    def release_address(self, network: str, mac: str, ip: str) -> bool:
        """Remove the fixed address of ``mac``; whether there was one."""
        return self._act(networks.release, network, mac, ip)

    # -- domains ---------------------------------------------------------------------
    def define(self, spec: DomainSpec) -> None:
        self._act(domains.define, spec)

    def start_new(self, spec: DomainSpec) -> DomainSpec:
        """Start a domain just defined from ``spec``. When the host offered KVM but it
        does not work there, redefine it for software emulation (TCG) and start that;
        when a nested host's KVM refuses a feature of the CPU model (an MSR), without
        that feature. Returns the spec that runs."""
        for _attempt in range(3):
            try:
                self._act(domains.act, spec.uuid, "start")
                return spec
            except VirtError as exc:
                feature = domains.refused_cpu_feature(exc)
                if spec.domain_type == "kvm" and feature and feature not in spec.cpu_disabled:
                    # A nested host's KVM refuses this feature of its model: without it.
                    log.warning("%s refuses CPU feature %s; starting %s without it",
                                self.name, feature, spec.name)
                    spec = replace(spec, cpu_disabled=spec.cpu_disabled + (feature,))
                elif spec.domain_type == "kvm" and domains.kvm_unusable(exc):
                    log.warning("KVM unusable on %s (%s); starting %s with TCG", self.name,
                                exc, spec.name)
                    spec = replace(spec, domain_type="qemu")
                else:
                    raise
                self._act(domains.define, spec)
        self._act(domains.act, spec.uuid, "start")
        return spec

    def act(self, uuid: str, verb: str, *, resumes: bool = False) -> None:
        """One of ``ACTIONS_BY_STATE``'s verbs (start, shutdown, poweroff...). Raises
        InvalidState when it does not fit the domain's state, DomainNotFound. A save
        (Suspend to disk), and a start that ``resumes`` a saved memory state, write or
        read the domain's whole memory: bounded by its size, and NoAnswer when the host
        gives no answer in time."""
        if verb == "save" or (verb == "start" and resumes):
            self._long(domains.act, uuid, verb)
        else:
            self._act(domains.act, uuid, verb)

    def remove(self, uuid: str) -> bool:
        """Stop and undefine the domain; whether there was one."""
        return self._act(domains.remove, uuid)

    def states(self) -> dict[str, str]:
        """Every domain's state by domain name, in three bulk calls."""
        return self._query(domains.states)

    def domain_state(self, uuid: str) -> str:
        """One domain's state (one call): what an action left it in."""
        return self._query(domains.state_of, uuid)

    def status(self, uuid: str) -> DomainStatus:
        """One domain's state, CPU time, memory, VNC and NIC."""
        return self._query(domains.status, uuid)

    def change_media(self, uuid: str, path: str | None) -> None:
        """Insert an ISO into the VM's install drive (None: eject)."""
        self._act(domains.change_media, uuid, path)

    def create_blank(self, pool_name: str, name: str, capacity: int) -> Volume:
        """A new empty qcow2 volume (a disk to install an OS on)."""
        return self._act(storage.create_blank, pool_name, name, capacity)

    def vnc_address(self, uuid: str) -> tuple[str, int]:
        """Where the running domain's VNC server listens. Raises InvalidState."""
        return self._query(domains.vnc_address, uuid)

    def open_screen(self, uuid: str, password: str, valid_seconds: int) -> tuple[str, int, bool]:
        """A new VNC password for the running domain, valid for a few seconds; where its
        screen listens and whether it is protected (see domains.open_screen)."""
        return self._act(domains.open_screen, uuid, password, valid_seconds)

    def open_serial(self, uuid: str) -> SerialBridge:
        """The running domain's serial line as a local socket (see virt/serial.py)."""
        return self._query(serial.open_serial, uuid)

    def set_user_password(self, uuid: str, user: str, password: str) -> None:
        """Set a guest user's password through the QEMU guest agent. Raises
        AgentUnavailable, InvalidState."""
        self._act(domains.set_user_password, uuid, user, password)

    def agent_addresses(self, uuid: str) -> dict[str, list[str]]:
        """The guest's addresses by MAC as its agent reports them."""
        return self._query(domains.agent_addresses, uuid)


def _host_load(conn, previous: CpuSample | None, cpu: bool) -> HostLoad:
    return hosts.host_load(conn, previous, cpu=cpu)


# Waiting on several hosts at once. The work itself runs in the pool's threads; these
# only wait for it, each at most its method's bound.
_waiters: ThreadPoolExecutor | None = None
_waiters_lock = threading.Lock()


def _waiter_pool() -> ThreadPoolExecutor:
    global _waiters
    with _waiters_lock:
        if _waiters is None:
            _waiters = ThreadPoolExecutor(32, thread_name_prefix="hypervisor-wait")
        return _waiters


def on_each(hypervisors: Iterable[Hypervisor],
            verb: Callable[[Hypervisor], T]) -> dict[str, T | VirtError]:
    """Run ``verb(h)`` on every hypervisor in parallel. Returns, per URI, the result or
    the VirtError it ended with; waits no longer than the slowest bound."""
    hypervisors = list(hypervisors)
    if len(hypervisors) == 1:
        return {hypervisors[0].uri: _outcome(verb, hypervisors[0])}
    futures = {h.uri: _waiter_pool().submit(_outcome, verb, h) for h in hypervisors}
    return {uri: future.result() for uri, future in futures.items()}


def _outcome(verb: Callable[[Hypervisor], T], h: Hypervisor) -> T | VirtError:
    try:
        return verb(h)
    except VirtError as exc:
        return exc
