"""System settings: defined here (type, default, bounds), stored in the database as JSON,
read through the shared cache and invalidated on every change."""
from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from flask_babel import gettext as _, lazy_gettext as _l

from ..extensions import cache, db
from ..models import Setting
from . import FieldError

CACHE_KEY = "loucloud:settings"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _check_name(value: str) -> str | None:
    if not NAME_RE.match(value):
        return _("Use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or "
                 "digit.")
    return None


def _check_vnc_listen(value: str) -> str | None:
    if value == "auto":
        return None
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return _("Enter 'auto' or an IP address.")
    if addr.version == 6 and addr.ipv4_mapped is not None:
        # A dual-stack socket bound to ::ffff:a.b.c.d listens on a.b.c.d: judge that.
        addr = addr.ipv4_mapped
    if addr.is_unspecified:
        return _("VNC must never listen on every address (0.0.0.0, :: or ::ffff:0.0.0.0).")
    if addr.is_multicast:
        return _("A multicast address cannot be listened on.")
    return None


CPU_MODES = ("host-model", "host-passthrough", "baseline")


def _check_cpu_mode(value: str) -> str | None:
    return None if value in CPU_MODES else _("Enter host-model, host-passthrough or baseline.")


@dataclass(frozen=True)
class Spec:
    """A setting. Its label, help and group are shown to people: lazy strings, said in
    the reader's language when used (str() them where a plain string is needed)."""
    key: str
    label: str
    kind: type
    default: Any
    help: str = ""
    minimum: int | None = None
    maximum: int | None = None
    check: Callable[[str], str | None] | None = None
    group: str = _l("General")


SPECS: tuple[Spec, ...] = (
    Spec("default_max_vms", _l("VMs"), int, 5, _l("Quota of a new user: number of VMs."), 0,
         10_000, group=_l("Quota of new users")),
    Spec("default_max_vcpus", "vCPUs", int, 8, _l("Quota of a new user: virtual CPUs in all."),
         0, 100_000, group=_l("Quota of new users")),
    Spec("default_max_memory_mib", _l("Memory (MiB)"), int, 8192,
         _l("Quota of a new user: memory of all VMs."), 0, 100_000_000,
         group=_l("Quota of new users")),
    Spec("default_max_disk_gib", _l("Disk (GiB)"), int, 100,
         _l("Quota of a new user: disk of all VMs."), 0, 10_000_000,
         group=_l("Quota of new users")),
    Spec("session_idle_minutes", _l("Session idle time (minutes)"), int, 60,
         _l("A session unused for this long ends; the user logs in again."), 1, 7 * 24 * 60,
         group=_l("Sessions")),
    Spec("storage_pool", _l("Storage pool"), str, "loucloud",
         _l("libvirt storage pool holding VM disks on every host (created when missing)."),
         check=_check_name, group=_l("Hosts")),
    Spec("network", _l("Network"), str, "default",
         _l("libvirt network VMs are attached to, where it is active on the host."),
         check=_check_name, group=_l("Hosts")),
    Spec("cpu_mode", _l("Guest CPU (KVM)"), str, "host-model",
         _l("host-model: each VM sees its host's CPU model (all its instructions, x86-64-v2 "
            "and up, as current systems need), live migration between hosts of the same CPU. "
            "baseline: the CPU every host of the pool can run (computed by libvirt), so VMs "
            "migrate anywhere. host-passthrough: the host's exact CPU, fastest, no "
            "migration. Guests under TCG (no KVM) get QEMU's 'max' model."),
         check=_check_cpu_mode, group=_l("Hosts")),
    Spec("vnc_listen", _l("VNC listen address"), str, "auto",
         _l("'auto': loopback on a local host, the host's own address on a remote one; "
            "or one IP address. Never every address."), check=_check_vnc_listen,
         group=_l("Hosts")),
    Spec("host_timeout", _l("Host answer bound (seconds)"), int, 3,
         _l("The longest a page waits for one host before showing it offline."), 1, 60,
         group=_l("Hosts")),
    Spec("action_timeout", _l("Action bound (seconds)"), int, 60,
         _l("The longest an action (create, start, delete...) waits for a host."), 5, 600,
         group=_l("Hosts")),
    Spec("memory_timeout_per_gib", _l("Memory bound (seconds per GiB)"), int, 30,
         _l("A snapshot with memory, a revert, a snapshot's delete, Suspend to disk and the "
            "start that resumes it write or read a VM's whole memory (its room to grow "
            "included): they wait the action bound plus this much per GiB of it. One that "
            "runs out leaves the VM in error, its outcome unknown until the host tells."),
         1, 600, group=_l("Hosts")),
    Spec("full_sync_seconds", _l("Full sync interval (seconds)"), int, 60,
         _l("The watcher reads every domain's state from every host this often, besides "
            "libvirt's events (and at every reconnect): a change it missed shows within "
            "this bound."), 5, 3600, group=_l("Hosts")),
    Spec("stuck_after_seconds", _l("Stuck action bound (seconds)"), int, 600,
         _l("A VM still 'starting…', 'creating…' (and so on) after this long is taken as "
            "interrupted: its real state is shown and it can be acted on again."), 30, 86400,
         group=_l("Hosts")),
    Spec("sample_interval_seconds", _l("Sampling interval (seconds)"), int, 10,
         _l("How often the sampler reads every host's and VM's figures for the charts."),
         2, 3600, group=_l("Monitoring")),
    Spec("retention_days", _l("Keep samples (days)"), int, 15,
         _l("Older samples are deleted; recent ones are thinned (all for 2 hours, one per "
            "5 minutes for 2 days, one per 30 minutes after that)."), 1, 3650,
         group=_l("Monitoring")),
    Spec("console_token_seconds", _l("Console link lifetime (seconds)"), int, 60,
         _l("How long an issued console link may be used to connect (once)."), 10, 3600,
         group=_l("Console")),
    Spec("snapshots_per_vm", _l("Snapshots per VM"), int, 5,
         _l("The most snapshots one VM may keep (each holds what changed since, and a "
            "running VM's memory, in its disk file on the host). 0: no snapshots."), 0, 100,
         group=_l("VMs")),
)
SPEC_BY_KEY = {spec.key: spec for spec in SPECS}


class Settings:
    """Read-only view of every setting, as attributes."""

    def __init__(self, values: dict[str, Any]):
        self._values = values

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(key) from None

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)


def _load() -> dict[str, Any]:
    values = {spec.key: spec.default for spec in SPECS}
    for row in db.session.execute(db.select(Setting)).scalars():
        spec = SPEC_BY_KEY.get(row.key)
        if spec is None:
            continue
        try:
            values[row.key] = spec.kind(json.loads(row.value))
        except (ValueError, TypeError):
            pass  # an unreadable stored value falls back to the default
    return values


def get_settings() -> Settings:
    values = cache.get(CACHE_KEY)
    if values is None:
        values = _load()
        cache.set(CACHE_KEY, values)
    return Settings(values)


def validate(raw: dict[str, Any]) -> dict[str, Any]:
    """Convert and check values for the given keys. Raises FieldError."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for key, value in raw.items():
        spec = SPEC_BY_KEY.get(key)
        if spec is None:
            errors[key] = _("Unknown setting.")
            continue
        try:
            if spec.kind is int:
                if isinstance(value, bool):
                    raise ValueError
                value = int(str(value).strip())
            else:
                value = str(value).strip()
        except (ValueError, TypeError):
            errors[key] = _("Enter a whole number.")
            continue
        if spec.minimum is not None and value < spec.minimum:
            errors[key] = _("Must be at least %(minimum)s.", minimum=spec.minimum)
        elif spec.maximum is not None and value > spec.maximum:
            errors[key] = _("Must be at most %(maximum)s.", maximum=spec.maximum)
        elif spec.check is not None and (msg := spec.check(value)):
            errors[key] = msg
        else:
            clean[key] = value
    if errors:
        raise FieldError.of(errors)
    return clean


def update_settings(raw: dict[str, Any]) -> dict[str, Any]:
    """Validate and store settings (one transaction). Returns the keys that changed with
    their new values. Raises FieldError and stores nothing if any value is wrong."""
    clean = validate(raw)
    current = get_settings().as_dict()
    changed = {k: v for k, v in clean.items() if current.get(k) != v}
    for key, value in changed.items():
        row = db.session.get(Setting, key)
        if row is None:
            db.session.add(Setting(key=key, value=json.dumps(value)))
        else:
            row.value = json.dumps(value)
    db.session.commit()
    cache.delete(CACHE_KEY)
    return changed
