"""Series for the charts, read from the sampler's store (no call to any host)."""
from __future__ import annotations

from datetime import timedelta

from ..extensions import db
from ..models import VM, HostSample, Server, VMSample, utcnow

# range -> (how far back, the lowest keeper level that has enough points)
RANGES = {"hour": (timedelta(hours=1), 0), "day": (timedelta(days=1), 1),
          "week": (timedelta(days=7), 2)}


def _rows(model, key_column, key, range_name: str):
    span, level = RANGES.get(range_name, RANGES["hour"])
    return db.session.execute(
        db.select(model).where(key_column == key, model.at >= utcnow() - span,
                               model.level >= level).order_by(model.at)).scalars().all()


def _time(row) -> str:
    return row.at.isoformat() + "Z"


def vm_series(vm: VM, range_name: str = "hour") -> dict:
    rows = _rows(VMSample, VMSample.vm_id, vm.id, range_name)
    return {
        "range": range_name if range_name in RANGES else "hour",
        "t": [_time(r) for r in rows],
        "cpu_percent": [r.cpu_percent for r in rows],
        "memory_used_mib": [r.memory_used_mib for r in rows],
        "disk_read_bps": [r.disk_read_bps for r in rows],
        "disk_write_bps": [r.disk_write_bps for r in rows],
        "net_rx_bps": [r.net_rx_bps for r in rows],
        "net_tx_bps": [r.net_tx_bps for r in rows],
        "limits": {"cpu_percent": 100 * vm.vcpus, "memory_mib": vm.memory_mib},
    }


def host_series(server: Server, range_name: str = "hour") -> dict:
    rows = _rows(HostSample, HostSample.server_id, server.id, range_name)
    return {
        "range": range_name if range_name in RANGES else "hour",
        "t": [_time(r) for r in rows],
        "online": [r.online for r in rows],
        "cpu_percent": [r.cpu_percent for r in rows],
        "memory_used_mib": [r.memory_used_mib for r in rows],
        "memory_total_mib": [r.memory_total_mib for r in rows],
        "domains_running": [r.domains_running for r in rows],
        "vms": [r.vms for r in rows],
    }
