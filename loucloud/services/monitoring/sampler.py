"""The sampler: every few seconds (Settings), one bulk statistics call per host, all
hosts at once, stored as one sample per host and per running VM.

Rates (CPU %, disk and network bytes/s) come from the difference with the previous
counters of the same domain; a counter that went down (the VM restarted) gives no rate
for that sample rather than a negative or absurd one. Every sample written in a cycle
gets a keeper level: 1 for the first cycle of a 5-minute bucket, 2 for the first of a
30-minute bucket. Thinning is then three plain deletes: level-0 samples after two
hours, level-1 samples after two days, everything after the retention period."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from ...extensions import db
from ...models import VM, HostSample, Host, VMSample, utcnow
from ...virt import VirtError
from ...virt.driver import HostCounters, on_each
from .. import hosts as host_service
from ..hypervisors import hypervisor
from .. import leases
from ..settings import get_settings
from ..vms import expiry as vm_expiry
from ..vms.guest import collect_agent_addresses

log = logging.getLogger(__name__)

LEASE = "sampler"          # one sampler across every LouCloud server
AGENT_EVERY_SECONDS = 30   # how often running guests' agents are asked their addresses
VM_EXPIRY_EVERY_SECONDS = 60   # how often batches' VMs are checked for their expiry
KEEP_RAW = timedelta(hours=2)
KEEP_5MIN = timedelta(days=2)
GIB = 1024 ** 3


@dataclass(frozen=True)
class CycleReport:
    at: datetime
    hosts: int
    hosts_offline: int
    vm_samples: int
    seconds: float
    running: tuple[int, ...] = ()     # ids of the running VMs sampled


def _rate(now: float, then: float, dt: float) -> float | None:
    if now is None or then is None or dt <= 0 or now < then:
        return None  # no earlier figure, or the counter restarted (the VM did)
    return (now - then) / dt


class Sampler:
    """Keeps the previous counters of every host between cycles (in this process)."""

    def __init__(self):
        self._previous: dict[str, HostCounters] = {}
        self._last_buckets: tuple[int, int] | None = None

    def _level(self, at: datetime) -> int:
        seconds = int(at.timestamp())
        buckets = (seconds // 300, seconds // 1800)
        last, self._last_buckets = self._last_buckets, buckets
        if last is None or buckets[1] != last[1]:
            return 2
        return 1 if buckets[0] != last[0] else 0

    def cycle(self) -> CycleReport:
        """Sample every host once; hosts that don't answer within the bound are
        recorded offline (and marked so) without holding up the others."""
        started = time.monotonic()
        settings = get_settings()
        hosts = db.session.execute(db.select(Host)).scalars().all()
        results = on_each([hypervisor(s) for s in hosts],
                          lambda h: h.collect_stats(settings.storage_pool))
        at = utcnow().replace(microsecond=0)
        level = self._level(at)
        # (id, host, uuid) rows, not whole VMs: a cycle reads every VM of the pool.
        vms_by_host: dict[int, dict[str, int]] = {}
        for vm_id, host_id, uuid in db.session.execute(
                db.select(VM.id, VM.host_id, VM.uuid)):
            vms_by_host.setdefault(host_id, {})[uuid] = vm_id
        host_rows, vm_rows, offline = [], [], 0
        for host in hosts:
            counters = results.get(host.uri)
            ours = vms_by_host.get(host.id, {})
            if isinstance(counters, VirtError) or counters is None:
                offline += 1
                host_rows.append({"host_id": host.id, "at": at, "level": level,
                                  "online": False, "vms": len(ours)})
                continue
            previous = self._previous.get(host.uri)
            host_rows.append(self._host_row(host, counters, previous, at, level, len(ours)))
            for uuid, dom in counters.domains.items():
                vm_id = ours.get(uuid)
                if vm_id is not None:  # domains LouCloud did not make are not its business
                    before = previous.domains.get(uuid) if previous else None
                    dt = counters.at - previous.at if previous else 0
                    vm_rows.append(self._vm_row(vm_id, dom, before, dt, at, level))
            self._previous[host.uri] = counters
        if host_rows:
            db.session.execute(db.insert(HostSample), host_rows)
        if vm_rows:
            db.session.execute(db.insert(VMSample), vm_rows)
        db.session.commit()
        host_service.note_states({s.id: results.get(s.uri) for s in hosts}, hosts)
        return CycleReport(at, len(hosts), offline, len(vm_rows),
                           round(time.monotonic() - started, 3),
                           tuple(row["vm_id"] for row in vm_rows if row["state"] == "running"))

    @staticmethod
    def _host_row(host, counters, previous, at, level, vms) -> dict:
        cpu = None
        if previous is not None and previous.cpu and counters.cpu and \
                counters.cpu.total_ns > previous.cpu.total_ns:
            busy = max(0, counters.cpu.busy_ns - previous.cpu.busy_ns)
            cpu = round(100.0 * busy / (counters.cpu.total_ns - previous.cpu.total_ns), 2)
        return {"host_id": host.id, "at": at, "level": level, "online": True,
                "cpu_percent": cpu, "memory_used_mib": counters.memory_used_mib,
                "memory_total_mib": counters.memory_total_mib,
                "domains_running": counters.domains_running, "vms": vms,
                "pool_capacity_gib": counters.pool_capacity / GIB
                if counters.pool_capacity is not None else None,
                "pool_used_gib": counters.pool_allocation / GIB
                if counters.pool_allocation is not None else None}

    @staticmethod
    def _vm_row(vm_id, dom, before, dt, at, level) -> dict:
        def rate(field):
            return _rate(getattr(dom, field), getattr(before, field), dt) if before else None
        cpu = rate("cpu_ns")
        return {"vm_id": vm_id, "at": at, "level": level, "state": dom.state,
                "cpu_percent": round(100.0 * cpu / 1e9, 2) if cpu is not None else None,
                "memory_used_mib": round(dom.memory_used_kib / 1024, 1)
                if dom.memory_used_kib is not None else None,
                "disk_read_bps": rate("disk_read"), "disk_write_bps": rate("disk_write"),
                "net_rx_bps": rate("net_rx"), "net_tx_bps": rate("net_tx")}


def expire(now: datetime | None = None) -> dict[str, int]:
    """Thin old samples and delete those past the retention period (Settings)."""
    now = now or utcnow()
    retention = timedelta(days=get_settings().retention_days)
    deleted = {}
    for model in (VMSample, HostSample):
        count = 0
        for older_than, below_level in ((KEEP_RAW, 1), (KEEP_5MIN, 2), (retention, 3)):
            count += db.session.execute(db.delete(model).where(
                model.at < now - older_than, model.level < below_level)).rowcount or 0
        deleted[model.__tablename__] = count
    db.session.commit()
    return deleted


def run(stop: threading.Event, *, once: bool = False) -> None:
    """The sampler's loop: a cycle every sample_interval_seconds (read anew each time),
    thinning every ten minutes; errors of one cycle are logged, the loop goes on. Only
    the holder of the sampler's lease samples (one across LouCloud servers)."""
    sampler, last_expire, last_agents, last_vm_expiry = Sampler(), 0.0, 0.0, 0.0
    holder = leases.me()
    while not stop.is_set():
        started = time.monotonic()
        interval = get_settings().sample_interval_seconds
        try:
            if not leases.acquire(LEASE, holder, ttl=3 * interval + 5):
                # Another LouCloud server's sampler holds the lease: stand by.
                db.session.remove()
                stop.wait(interval)
                continue
            report = sampler.cycle()
            log.info("sampled %d hosts (%d offline), %d VMs in %.2f s", report.hosts,
                     report.hosts_offline, report.vm_samples, report.seconds)
            if started - last_agents >= AGENT_EVERY_SECONDS and report.running:
                ask_agents(report.running)
                last_agents = started
            if started - last_expire > 600:
                expire()
                last_expire = started
            if started - last_vm_expiry >= VM_EXPIRY_EVERY_SECONDS:
                vm_expiry.expire_due()   # batches' VMs whose time has come (issue 16)
                last_vm_expiry = started
        except Exception:  # noqa: BLE001 - a sampler that dies shows nothing any more
            db.session.rollback()
            log.exception("sampling cycle failed")
        finally:
            db.session.remove()
        if once:
            return
        stop.wait(max(0.0, interval - (time.monotonic() - started)))


def ask_agents(vm_ids: tuple[int, ...]) -> int:
    """Ask the guest agents of these running VMs (those with a network card) what
    addresses they have; pages show what was stored. Returns how many answered."""
    vms = db.session.execute(db.select(VM).where(VM.id.in_(vm_ids), VM.mac.is_not(None))
                             ).scalars().all()
    return collect_agent_addresses(vms) if vms else 0
