"""Every volume of LouCloud's storage pool on every host (issue 14, the administrator's
Volumes page and ``manage.py volumes``): whose each one is (a VM's disk or first-boot
seed, an image's copy, an upload arriving, a leftover LouCloud removes itself), and the
orphans no record owns, which the administrator may delete (only when no domain and no
other volume on the host uses the file)."""
from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass, field

from flask_babel import gettext as _

from ..extensions import db
from ..models import VM, Disk, Host, Image, ImageLocation, Leftover, Task, Upload, User
from ..virt import HostUnavailable, InvalidState, VirtError, VolumeNotFound
from ..virt.driver import PoolVolume, on_each
from . import Conflict, NotFound, ServiceError, Unavailable, transaction
from .hypervisors import hypervisor
from .imagecopy import volume_for
from .settings import get_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VolumeRow:
    host: Host
    volume: PoolVolume
    owner: str | None         # what it belongs to, in words; None: an orphan
    vm_id: int | None = None

    @property
    def orphan(self) -> bool:
        return self.owner is None

    def as_dict(self) -> dict:
        v = self.volume
        return {"host": self.host.name, "name": v.name, "path": v.path, "format": v.format,
                "capacity": v.capacity, "allocation": v.allocation,
                "owner": self.owner or "", "orphan": self.orphan, "vm_id": self.vm_id}


@dataclass
class VolumeReport:
    pool: str
    rows: list[VolumeRow] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)   # host name -> why not listed

    @property
    def orphans(self) -> list[VolumeRow]:
        return [r for r in self.rows if r.orphan]


def _owners() -> dict[tuple[int | None, str], tuple[str, int | None]]:
    """(host id or None for every host, volume name) -> (owner in words, VM id)."""
    owners: dict[tuple[int | None, str], tuple[str, int | None]] = {}
    rows = db.session.execute(
        db.select(Disk.volume_name, Disk.target, VM.id, VM.name, VM.host_id, User.username)
        .join(VM, VM.id == Disk.vm_id).join(User, User.id == VM.owner_id)).all()
    for volume, target, vm_id, name, host_id, owner in rows:
        owners[(host_id, volume)] = (_("VM %(vm)s of %(owner)s, disk %(disk)s", vm=name,
                                       owner=owner, disk=target), vm_id)
    for vm_id, name, host_id, owner, system, seed in db.session.execute(
            db.select(VM.id, VM.name, VM.host_id, User.username, VM.volume_name,
                      VM.seed_volume).join(User, User.id == VM.owner_id)).all():
        if system:
            owners.setdefault((host_id, system), (_("VM %(vm)s of %(owner)s, disk %(disk)s",
                                                    vm=name, owner=owner, disk="vda"), vm_id))
        if seed:
            owners[(host_id, seed)] = (_("VM %(vm)s of %(owner)s, first-boot seed", vm=name,
                                         owner=owner), vm_id)
    for name, volume in db.session.execute(db.select(Image.name, Image.volume)).all():
        if volume:
            owners[(None, volume)] = (_("image %(name)s", name=name), None)
    for host_id, path, image_path, name in db.session.execute(
            db.select(ImageLocation.host_id, ImageLocation.path, Image.path, Image.name)
            .join(Image, Image.id == ImageLocation.image_id)).all():
        if path or image_path:  # a copy's own path, else the image's (Image.path_on)
            owners[(host_id, posixpath.basename(path or image_path))] = (
                _("image %(name)s", name=name), None)
    for (name,) in db.session.execute(db.select(Upload.name)
                                      .where(Upload.state == "receiving")).all():
        for fmt in ("qcow2", "iso", "raw"):
            owners.setdefault((None, volume_for(name, fmt)),
                              (_("upload %(name)s, arriving", name=name), None))
    # While a migration or a drain runs, a moving VM already has volumes on its target
    # (chosen per VM by a drain): a VM's volume names are its own (its UUID), so they
    # are its on every host then, never orphans to delete mid-copy.
    if db.session.execute(db.select(Task.id).where(
            Task.kind.in_(("vm.migrate", "host.drain")),
            Task.state.in_(("queued", "running"))).limit(1)).first():
        for (_host, volume), (owner, vm_id) in list(owners.items()):
            if vm_id is not None:
                owners.setdefault((None, volume), (_("%(owner)s (being moved)", owner=owner),
                                                   vm_id))
    for host_id, name in db.session.execute(
            db.select(Leftover.host_id, Leftover.name)
            .where(Leftover.kind == Leftover.VOLUME)).all():
        owners.setdefault((host_id, name), (_("leftover of a failed step (LouCloud removes "
                                              "it when it next reaches the host)"), None))
    return owners


def _owner_of(owners, host_id: int, name: str) -> tuple[str | None, int | None]:
    return owners.get((host_id, name)) or owners.get((None, name)) or (None, None)


def list_volumes() -> VolumeReport:
    """Every volume of LouCloud's pool on every host, in one bulk listing per host (all
    hosts at once); a host that cannot tell is named with why."""
    pool_name = get_settings().storage_pool
    hosts = db.session.execute(db.select(Host).order_by(Host.name)).scalars().all()
    report = VolumeReport(pool_name)
    if not hosts:
        return report
    by_uri = {h.uri: h for h in hosts}
    outcomes = on_each([hypervisor(h) for h in hosts], lambda hv: hv.pool_volumes(pool_name))
    owners = _owners()
    for uri, outcome in outcomes.items():
        host = by_uri[uri]
        if isinstance(outcome, VirtError):
            report.problems[host.name] = str(outcome)
            continue
        for volume in outcome:
            owner, vm_id = _owner_of(owners, host.id, volume.name)
            report.rows.append(VolumeRow(host, volume, owner, vm_id))
    report.rows.sort(key=lambda r: (r.host.name, r.orphan is False, r.volume.name))
    return report


@transaction
def delete_orphan(host: Host, name: str) -> str:
    """Delete a volume of LouCloud's pool on ``host`` that no record owns and nothing on
    the host uses. Raises Conflict (it belongs to something, or is in use), NotFound
    (no such volume), Unavailable, ServiceError."""
    name = (name or "").strip()
    pool_name = get_settings().storage_pool
    # No volume name holds a control character (a NUL would not even reach libvirt)
    if not name or len(name) > 255 or any(ord(c) < 32 or c == "\x7f" for c in name):
        raise NotFound(_("%(host)s has no volume of this name in %(pool)s.", host=host.name,
                         pool=pool_name))
    owner, _vm = _owner_of(_owners(), host.id, name)
    if owner:
        raise Conflict(_("%(name)s is no orphan: it belongs to %(owner)s.", name=name,
                         owner=owner))
    try:
        hypervisor(host).delete_unused_volume(pool_name, name)
    except VolumeNotFound:
        raise NotFound(_("%(host)s has no volume %(name)s in %(pool)s.", host=host.name,
                         name=repr(name[:255]), pool=pool_name)) from None
    except InvalidState as exc:
        raise Conflict(_("Not deleted: %(error)s.", error=exc)) from None
    except HostUnavailable as exc:
        raise Unavailable(_("%(host)s does not answer: %(error)s", host=host.name,
                            error=exc)) from None
    except VirtError as exc:
        raise ServiceError(_("%(host)s could not delete %(name)s: %(error)s", host=host.name,
                             name=name, error=exc)) from None
    log.info("orphan volume %s deleted from %s", name, host.name)
    return _("Orphan volume %(name)s deleted from %(host)s.", name=name, host=host.name)
