"""Verbs about a host as a whole. Each takes an open connection (see HostPool.call)."""
from __future__ import annotations

import time
from dataclasses import dataclass

import libvirt

from . import networks, storage, xml
from .errors import NetworkNotFound, NotSupported, translate
from .xml import NetworkDesc


@dataclass(frozen=True)
class HostInfo:
    hostname: str
    arch: str
    cpus: int
    memory_mib: int
    hypervisor: str
    hypervisor_version: str
    libvirt_version: str
    domain_types: tuple[str, ...]


@dataclass(frozen=True)
class CpuSample:
    at: float
    busy_ns: int
    total_ns: int


@dataclass(frozen=True)
class HostLoad:
    cpus: int
    cpu_percent: float | None  # None when the host gives no usable CPU counters
    memory_total_mib: int
    memory_used_mib: int
    domains_total: int
    domains_running: int
    cpu_sample: CpuSample | None

    @property
    def memory_free_mib(self) -> int:
        return max(0, self.memory_total_mib - self.memory_used_mib)


def version_string(number: int) -> str:
    """libvirt encodes versions as major * 1,000,000 + minor * 1,000 + release."""
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


def _node_memory(conn: libvirt.virConnect) -> dict | None:
    """The node's memory figures in KiB (total, free, buffers, cached), or None where the
    driver has none (the test driver). Their total is the host's memory: getInfo's can be
    less (one NUMA cell's, as seen on a virtual machine: 6 GiB of 24)."""
    try:
        return conn.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS)
    except libvirt.libvirtError as exc:
        if not isinstance(translate(exc), NotSupported):
            raise
        return None


def host_info(conn: libvirt.virConnect) -> HostInfo:
    """What the host is: name, CPUs, memory, hypervisor and libvirt versions."""
    arch, memory_mib, cpus = conn.getInfo()[:3]
    mem = _node_memory(conn)
    if mem and mem.get("total"):
        memory_mib = mem["total"] // 1024
    caps = xml.parse_capabilities(conn.getCapabilities())
    return HostInfo(
        hostname=conn.getHostname(),
        arch=arch,
        cpus=int(cpus),
        memory_mib=int(memory_mib),
        hypervisor=conn.getType(),
        hypervisor_version=version_string(conn.getVersion()),
        libvirt_version=version_string(conn.getLibVersion()),
        domain_types=caps.domain_types(caps.host_arch or arch),
    )


def cpu_counters(conn: libvirt.virConnect) -> CpuSample | None:
    """The node's cumulative CPU time counters (None where the driver has none)."""
    try:
        stats = conn.getCPUStats(libvirt.VIR_NODE_CPU_STATS_ALL_CPUS)
    except libvirt.libvirtError as exc:
        if isinstance(translate(exc), NotSupported):
            return None
        raise
    busy = sum(stats.get(k, 0) for k in ("kernel", "user"))
    total = busy + sum(stats.get(k, 0) for k in ("idle", "iowait"))
    return CpuSample(time.time(), busy, total)


def _cpu_percent(before: CpuSample | None, after: CpuSample | None) -> float | None:
    if before is None or after is None or after.total_ns <= before.total_ns:
        return None
    busy = max(0, after.busy_ns - before.busy_ns)
    return round(100.0 * busy / (after.total_ns - before.total_ns), 1)


def host_load(conn: libvirt.virConnect, previous: CpuSample | None = None,
              *, cpu: bool = True, first_interval: float = 0.2) -> HostLoad:
    """CPU and memory use and the number of domains, in a handful of calls.

    CPU use is the share of busy time since ``previous`` (a sample from an earlier call,
    returned as ``cpu_sample``); without one, two samples ``first_interval`` apart.
    ``cpu=False`` skips CPU use (placement needs only memory)."""
    sample = cpu_counters(conn) if cpu else None
    if sample is not None and (previous is None or previous.total_ns >= sample.total_ns):
        time.sleep(first_interval)
        previous, sample = sample, cpu_counters(conn)
    info = conn.getInfo()
    total_mib = int(info[1])
    running = conn.numOfDomains()
    defined = conn.numOfDefinedDomains()
    mem = _node_memory(conn)
    if mem is not None:
        free_kib = mem.get("free", 0) + mem.get("buffers", 0) + mem.get("cached", 0)
        total_mib = int(mem.get("total", total_mib * 1024) // 1024)
        used_mib = max(0, total_mib - int(free_kib // 1024))
    else:
        # Drivers without node memory stats (the test driver): what running domains hold.
        used_kib = sum(d.maxMemory() for d in
                       conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE))
        used_mib = min(total_mib, used_kib // 1024)
    return HostLoad(
        cpus=int(info[2]),
        cpu_percent=_cpu_percent(previous, sample),
        memory_total_mib=total_mib,
        memory_used_mib=used_mib,
        domains_total=running + defined,
        domains_running=running,
        cpu_sample=sample,
    )


@dataclass(frozen=True)
class Preparation:
    """What a host offers a new VM: its pool ready, the domain type, and where its NIC
    can go (``nic_kind`` "network", "bridge", "user" or None with ``nic_problem``)."""
    pool_path: str
    arch: str
    domain_type: str
    nic_kind: str | None
    nic_source: str
    network: NetworkDesc | None = None
    nic_problem: str | None = None
    uefi: bool = False

    @property
    def network_active(self) -> bool:
        return self.nic_kind == "network"


def is_session(conn: libvirt.virConnect) -> bool:
    """A per-user daemon (qemu:///session): its VMs run as that user, with user-mode
    networking (no libvirt networks of the system's)."""
    return conn.getURI().rstrip("/").endswith("/session")


def prepare_for_vm(conn: libvirt.virConnect, pool_name: str, pool_path: str,
                   nic_kind: str = "network", nic_source: str = "default",
                   want_uefi: bool = False) -> Preparation:
    """Make the storage pool ready, find the best domain type (kvm when offered, else
    qemu), and check where the VM's NIC can go, in a few calls."""
    path = storage.ensure_pool(conn, pool_name, pool_path)
    arch = conn.getInfo()[0]
    caps = xml.parse_capabilities(conn.getCapabilities())
    offered = caps.domain_types(caps.host_arch or arch)
    domain_type = next((t for t in ("kvm", "qemu") if t in offered),
                       offered[0] if offered else "qemu")
    arch = caps.host_arch or arch
    uefi = want_uefi and _offers_uefi(conn, arch, domain_type)
    if nic_kind == "none":
        return Preparation(path, arch, domain_type, None, "", uefi=uefi)
    if is_session(conn):
        return Preparation(path, arch, domain_type, "user", "", uefi=uefi)
    if nic_kind == "bridge":
        return Preparation(path, arch, domain_type, "bridge", nic_source, uefi=uefi)
    try:
        net = networks.network(conn, nic_source)
    except (NetworkNotFound, NotSupported):
        return Preparation(path, arch, domain_type, None, nic_source,
                           nic_problem=f"there is no network {nic_source}",
                           uefi=uefi)
    if not net.active:
        return Preparation(path, arch, domain_type, None, nic_source, net.desc,
                           nic_problem=f"the network {nic_source} is not active", uefi=uefi)
    return Preparation(path, arch, domain_type, "network", nic_source, net.desc, uefi=uefi)


def _offers_uefi(conn: libvirt.virConnect, arch: str, domain_type: str) -> bool:
    """Whether the host has UEFI firmware (OVMF) for this kind of guest."""
    try:
        text = conn.getDomainCapabilities(None, arch, None, domain_type, 0)
    except libvirt.libvirtError as exc:
        if isinstance(translate(exc), NotSupported):
            return False
        raise
    return "efi" in xml.parse_domain_capabilities(text).firmwares


def host_cpu(conn: libvirt.virConnect) -> str | None:
    """The CPU a host-model guest gets on this host, as a <cpu> element (for a baseline
    across hosts), or None where the host has none to offer (TCG only, test driver)."""
    try:
        text = conn.getDomainCapabilities(None, None, None, "kvm", 0)
    except libvirt.libvirtError as exc:
        if isinstance(translate(exc), NotSupported) or "kvm" in str(exc).lower():
            return None
        raise
    return xml.parse_domain_capabilities(text).host_model_cpu


def baseline_cpu(conn: libvirt.virConnect, cpus: list[str]) -> str:
    """The CPU every one of these host CPUs can run (libvirt's baseline, in the
    hypervisor's terms), as a <cpu> element."""
    try:
        return conn.baselineHypervisorCPU(None, None, None, "kvm", cpus,
                                          libvirt.VIR_CONNECT_BASELINE_CPU_MIGRATABLE)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None
