"""Series for the charts, read from the sampler's store (no call to any host)."""
from __future__ import annotations

from datetime import timedelta

from ...extensions import db
from ...models import VM, HostSample, Host, VMSample, utcnow

# range -> (how far back, the lowest keeper level that has enough points)
RANGES = {"hour": (timedelta(hours=1), 0), "day": (timedelta(days=1), 1),
          "week": (timedelta(days=7), 2)}


def _series(model, key_column, key, range_name: str) -> tuple[list, dict]:
    """The samples of one VM or host over a range (an unknown range is the last hour),
    and the start of its JSON: the range and the times."""
    if range_name not in RANGES:
        range_name = "hour"
    span, level = RANGES[range_name]
    rows = db.session.execute(
        db.select(model).where(key_column == key, model.at >= utcnow() - span,
                               model.level >= level).order_by(model.at)).scalars().all()
    return rows, {"range": range_name, "t": [r.at.isoformat() + "Z" for r in rows]}


def vm_series(vm: VM, range_name: str = "hour") -> dict:
    rows, head = _series(VMSample, VMSample.vm_id, vm.id, range_name)
    return {
        **head,
        "cpu_percent": [r.cpu_percent for r in rows],
        "memory_used_mib": [r.memory_used_mib for r in rows],
        "disk_read_bps": [r.disk_read_bps for r in rows],
        "disk_write_bps": [r.disk_write_bps for r in rows],
        "net_rx_bps": [r.net_rx_bps for r in rows],
        "net_tx_bps": [r.net_tx_bps for r in rows],
        "limits": {"cpu_percent": 100 * vm.vcpus, "memory_mib": vm.memory_mib},
    }


def host_series(host: Host, range_name: str = "hour") -> dict:
    rows, head = _series(HostSample, HostSample.host_id, host.id, range_name)
    return {
        **head,
        "online": [r.online for r in rows],
        "cpu_percent": [r.cpu_percent for r in rows],
        "memory_used_mib": [r.memory_used_mib for r in rows],
        "memory_total_mib": [r.memory_total_mib for r in rows],
        "domains_running": [r.domains_running for r in rows],
        "vms": [r.vms for r in rows],
    }
