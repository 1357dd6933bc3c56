"""What the dashboards show: the pool at a glance for the administrator, a user's own
VMs and quota for everybody else."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from flask_babel import gettext as _

from ...extensions import db
from ...models import VM, AuditEvent, Disk, HostSample, User, VMSample
from .. import hosts as host_service
from .. import watching
from ..vms import state as vm_state
from ..users import QuotaUsage, quota_usage


@dataclass
class Capacity:
    name: str
    vcpus_used: int = 0
    vcpus_total: int = 0
    memory_used_mib: int = 0
    memory_total_mib: int = 0
    disk_used_gib: float = 0
    disk_total_gib: float | None = None


@dataclass
class AdminDashboard:
    hosts: list                      # hosts.HostView, live
    capacity: list[Capacity]         # per host, then the total (last)
    states: Counter = field(default_factory=Counter)
    busiest: list = field(default_factory=list)  # (VM, cpu %, at)
    events: list = field(default_factory=list)


@dataclass
class UserDashboard:
    states: Counter
    vms: list
    usage: QuotaUsage


def _allocated() -> dict[int, tuple[int, int, int]]:
    """(vCPUs, memory MiB, disk GiB) given to LouCloud VMs, per host."""
    rows = db.session.execute(db.select(
        VM.host_id, db.func.sum(VM.vcpus), db.func.sum(VM.memory_mib))
        .group_by(VM.host_id)).all()
    # Every disk of the host's VMs, data disks included (as the quota counts them).
    disks = dict(db.session.execute(db.select(VM.host_id, db.func.sum(Disk.size_gib))
                                    .join(Disk, Disk.vm_id == VM.id)
                                    .group_by(VM.host_id)).all())
    return {sid: (int(c or 0), int(m or 0), int(disks.get(sid) or 0)) for sid, c, m in rows}


def _latest_pool_sizes() -> dict[int, float]:
    latest = db.select(HostSample.host_id, db.func.max(HostSample.at).label("at")).where(
        HostSample.pool_capacity_gib.is_not(None)).group_by(HostSample.host_id).subquery()
    rows = db.session.execute(db.select(HostSample.host_id, HostSample.pool_capacity_gib)
                              .join(latest, db.and_(HostSample.host_id == latest.c.host_id,
                                                    HostSample.at == latest.c.at))).all()
    return dict(rows)


def busiest_vms(limit: int = 5) -> list[tuple[VM, float]]:
    """The VMs using the most CPU in the sampler's last cycle."""
    last = db.session.execute(db.select(db.func.max(VMSample.at))).scalar()
    if last is None:
        return []
    rows = db.session.execute(
        db.select(VM, VMSample.cpu_percent).join(VMSample, VMSample.vm_id == VM.id)
        .where(VMSample.at == last, VMSample.cpu_percent.is_not(None))
        .order_by(VMSample.cpu_percent.desc()).limit(limit)).all()
    return [(vm, cpu) for vm, cpu in rows]


def for_admin() -> AdminDashboard:
    """The pool at a glance: hosts from the store while the watcher beats (the load of
    the sampler's last cycle), else asked now."""
    views = host_service.stored_host_views() if watching.fresh() else host_service.list_hosts()
    allocated, pools = _allocated(), _latest_pool_sizes()
    capacity, total = [], Capacity(_("All hosts"), disk_total_gib=0)
    for view in views:
        s = view.host
        cpus, mem, disk = allocated.get(s.id, (0, 0, 0))
        cap = Capacity(s.name, cpus, s.cpus, mem, s.memory_mib, disk, pools.get(s.id))
        capacity.append(cap)
        total.vcpus_used += cpus
        total.vcpus_total += s.cpus
        total.memory_used_mib += mem
        total.memory_total_mib += s.memory_mib
        total.disk_used_gib += disk
        if cap.disk_total_gib is not None:
            total.disk_total_gib += cap.disk_total_gib
    capacity.append(total)
    all_vms = db.session.execute(db.select(VM)).scalars().all()
    states = Counter(v.state for v in vm_state.views(all_vms))
    events = db.session.execute(db.select(AuditEvent).order_by(
        AuditEvent.id.desc()).limit(10)).scalars().all()
    return AdminDashboard(views, capacity, states, busiest_vms(), events)


def for_user(user: User) -> UserDashboard:
    mine = db.session.execute(db.select(VM).where(VM.owner_id == user.id)
                              .order_by(VM.name)).scalars().all()
    views = vm_state.views(mine)
    return UserDashboard(Counter(v.state for v in views), views, quota_usage(user))
