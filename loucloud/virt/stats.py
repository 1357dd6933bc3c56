"""Raw counters of a host and all its domains, in a constant number of calls: one
getAllDomainStats for every domain, the node's CPU and memory, the storage pool."""
from __future__ import annotations

import time
from dataclasses import dataclass

import libvirt

from . import hosts
from .domains import state_name
from .errors import NotSupported, PoolNotFound, translate

DOMAIN_STATS = (libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL |
                libvirt.VIR_DOMAIN_STATS_BALLOON | libvirt.VIR_DOMAIN_STATS_VCPU |
                libvirt.VIR_DOMAIN_STATS_INTERFACE | libvirt.VIR_DOMAIN_STATS_BLOCK)
ACTIVE_ONLY = libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE


@dataclass(frozen=True)
class DomainCounters:
    state: str
    vcpus: int
    cpu_ns: int | None
    memory_kib: int | None       # assigned now (balloon)
    memory_used_kib: int | None  # what the guest uses, as far as it can be known
    disk_read: int
    disk_write: int
    net_rx: int
    net_tx: int


@dataclass(frozen=True)
class HostCounters:
    at: float                      # monotonic-free wall clock (time.time())
    cpu: hosts.CpuSample | None
    memory_total_mib: int
    memory_used_mib: int
    domains_running: int
    pool_capacity: int | None      # bytes
    pool_allocation: int | None
    domains: dict[str, DomainCounters]


def _sum(values: dict, prefix: str, count_key: str, field: str) -> int:
    return sum(int(values.get(f"{prefix}.{i}.{field}", 0) or 0)
               for i in range(int(values.get(count_key, 0) or 0)))


def _memory_used(values: dict) -> int | None:
    """The guest's own figure when its balloon driver reports one, else the QEMU
    process's resident memory; never more than what the VM was given."""
    current = values.get("balloon.current")
    available, unused = values.get("balloon.available"), values.get("balloon.unused")
    if available is not None and unused is not None:
        used = available - unused
    else:
        used = values.get("balloon.rss")
    if used is None:
        return None
    return min(int(used), int(current)) if current else int(used)


def _pool_size(conn: libvirt.virConnect, pool_name: str) -> tuple[int | None, int | None]:
    try:
        info = conn.storagePoolLookupByName(pool_name).info()
    except libvirt.libvirtError as exc:
        if isinstance(translate(exc), (PoolNotFound, NotSupported)):
            return None, None
        raise
    return int(info[1]), int(info[2])


def collect(conn: libvirt.virConnect, pool_name: str) -> HostCounters:
    """Counters of the host and of its running and paused domains."""
    at = time.time()
    cpu = hosts.cpu_counters(conn)
    load = hosts.host_load(conn, cpu=False)  # memory and domain counts
    domains: dict[str, DomainCounters] = {}
    for dom, values in conn.getAllDomainStats(DOMAIN_STATS, ACTIVE_ONLY):
        domains[dom.UUIDString()] = DomainCounters(
            state=state_name(values.get("state.state", 0)),
            vcpus=int(values.get("vcpu.current", 0) or 0),
            cpu_ns=values.get("cpu.time"),
            memory_kib=values.get("balloon.current"),
            memory_used_kib=_memory_used(values),
            disk_read=_sum(values, "block", "block.count", "rd.bytes"),
            disk_write=_sum(values, "block", "block.count", "wr.bytes"),
            net_rx=_sum(values, "net", "net.count", "rx.bytes"),
            net_tx=_sum(values, "net", "net.count", "tx.bytes"),
        )
    capacity, allocation = _pool_size(conn, pool_name)
    return HostCounters(at=at, cpu=cpu, memory_total_mib=load.memory_total_mib,
                        memory_used_mib=load.memory_used_mib,
                        domains_running=load.domains_running, pool_capacity=capacity,
                        pool_allocation=allocation, domains=domains)
