"""Creating a VM: quota reserved atomically, a host chosen, a disk as an overlay on the
image, a NIC on the template's network (with a fixed address on LouCloud's networks),
first-boot data for cloud images, then the domain defined and started.

A create that fails at any step removes what it made on the host and its row, so the
quota is as before; what a dead host keeps is listed and removed when it answers."""
from __future__ import annotations

import logging
import secrets
import uuid as uuidlib
from typing import Callable, NoReturn

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import VM, Disk, Host, Image, Leftover, Template, User, utcnow
from ...virt import HostUnavailable, VirtError
from ...virt.driver import DomainSpec, Hypervisor, Nic, Preparation, Volume
from .. import (Conflict, FieldError, ServiceError, Unavailable, cloudinit, leftovers, said,
               transaction)
from .. import networks as network_service
from .. import watching
from ..bootjobs import jobs_for
from ..hypervisors import hypervisor
from ..keys import keys_of
from ..names import display_name
from ..passwords import password_problem
from ..settings import get_settings
from ..templates import may_use_template
from .. import group_quota
from ..users import Quota, quota_usage
from . import placement
from .room import balloons, room_for
from .state import forget_states

log = logging.getLogger(__name__)

GIB = 1024 ** 3


class QuotaExceeded(Conflict):
    """The owner's quota has no room for it (about the whole request, no one field)."""


def check_name(name: str) -> str:
    """A VM's display name, normalised (names.py): any language's letters and digits,
    '-', '_' or '.'. Its domain and volumes are named lc-<uuid> whatever it is."""
    return display_name(name, what="vm")


def generate_password() -> str:
    """A login password for a new VM, shown to its owner once."""
    return secrets.token_urlsafe(12)


def lock_quota(owner_id: int, *, vms: int = 0, vcpus: int = 0, memory_mib: int = 0,
               disk_gib: int = 0) -> User:
    """The one quota check of a create, a clone, a resize, a disk: a fresh transaction
    whose first statement is the UPDATE on the owner's row, which locks that row
    (InnoDB) or the database (SQLite) until the caller's commit, so concurrent requests
    queue here; then the UPDATE on the rows of the owner's groups (issue 16: their
    total quotas, counted over every member's VMs; group_quota.py); then the usage
    read. Raises QuotaExceeded (rolled back) when adding these passes the owner's quota
    or one of his groups'; else returns the owner, locked: the caller makes its change
    and commits."""
    db.session.commit()  # a fresh transaction: no read may come before the locks
    db.session.execute(db.update(User).where(User.id == owner_id)
                       .values(quota_lock=User.quota_lock + 1))
    group_quota.lock_groups_of(owner_id)
    owner = db.session.get(User, owner_id)
    usage = quota_usage(owner)
    # lazy: the refusal keeps its message for a task's row (said.py)
    over = [_l("%(what)s %(used)s in use + %(add)s would exceed %(total)s", what=label,
               used=used, add=add, total=total)
            for label, used, total, add in (
                (_l("VMs"), usage.used.vms, usage.total.vms, vms),
                (_l("vCPUs"), usage.used.vcpus, usage.total.vcpus, vcpus),
                (_l("memory (MiB)"), usage.used.memory_mib, usage.total.memory_mib,
                 memory_mib),
                (_l("disk (GiB)"), usage.used.disk_gib, usage.total.disk_gib, disk_gib))
            if add > 0 and used + add > total]
    refusals = [_l("Over quota: %(items)s.", items=said.Joined(over, "; "))] if over else []
    refusals += group_quota.over(owner_id, Quota(vms, vcpus, memory_mib, disk_gib))
    if refusals:
        db.session.rollback()
        raise QuotaExceeded(said.Joined(refusals, " "))
    return owner


def _reserve(owner: User, name: str, template: Template, host: Host, uuid: str,
             sizes: tuple[int, int, int] | None = None, image_id: int | None = None,
             batch=None) -> VM:
    """Insert the VM's row if the owner's quota allows it, atomically (``lock_quota``).
    ``sizes`` (vCPUs, MiB, GiB) and ``image_id`` are the template's unless given (a
    clone's are its source's); a ``batch``'s VM is its from the start (with its expiry)."""
    owner_id, template_id = owner.id, template.id
    batch_id, expires_at = (batch.id, batch.expires_at) if batch is not None else (None, None)
    vcpus, memory_mib, disk_gib = sizes or (template.vcpus, template.memory_mib,
                                            template.disk_gib)
    lock_quota(owner_id, vms=1, vcpus=vcpus, memory_mib=memory_mib, disk_gib=disk_gib)
    template = db.session.get(Template, template_id)
    if db.session.execute(db.select(VM.id).where(VM.owner_id == owner_id,
                                                 VM.name == name)).first():
        db.session.rollback()
        raise FieldError(_l("You already have a VM named %(name)s.", name=name), "name")
    image = db.session.get(Image, image_id or template.image_id)
    max_vcpus, max_memory_mib = room_for(vcpus, memory_mib, balloons(image))
    vm = VM(name=name, owner_id=owner_id, host_id=host.id, template_id=template_id,
            image_id=image_id or template.image_id, domain_name=f"lc-{uuid}", uuid=uuid,
            vcpus=vcpus, memory_mib=memory_mib, disk_gib=disk_gib,
            max_vcpus=max_vcpus, max_memory_mib=max_memory_mib,
            volume_name=f"lc-{uuid}.qcow2", status=VM.CREATING, status_since=utcnow(),
            batch_id=batch_id, expires_at=expires_at)
    vm.disks.append(Disk(target="vda", volume_name=vm.volume_name, size_gib=vm.disk_gib,
                         system=True))
    db.session.add(vm)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise FieldError(_l("You already have a VM named %(name)s.", name=name),
                         "name") from None
    return vm


def _random_mac() -> str:
    return "52:54:00:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3))


def _seed(vm_name: str, uuid: str, template: Template, owner: User, password: str | None,
          boot_job_ids: list[int] | None, *,
          password_hash: str | None = None) -> tuple[bytes | None, list[str]]:
    """The seed ISO for a cloud image (None for others), and the boot jobs in it (a
    ``password_hash`` made earlier stands for a password checked then: a clone's task)."""
    image = template.image
    if not image.cloud_init:
        if password:
            raise FieldError(_("%(image)s takes no first-boot data: set passwords inside "
                               "the guest.", image=image.name), "password")
        return None, []
    if password and (problem := password_problem(password, owner.username)):
        raise FieldError(problem, "password")
    jobs = jobs_for(template, boot_job_ids)
    seed = cloudinit.Seed(
        instance_id=uuid, hostname=cloudinit.hostname_for(vm_name),
        login_user=image.login_user,
        password_hash=cloudinit.hash_password(password) if password else password_hash,
        ssh_keys=tuple(k.key for k in keys_of(owner)),
        jobs=tuple((j.name, cloudinit.parse_boot_job(j.script)) for j in jobs))
    return cloudinit.build_iso(seed), [j.name for j in jobs]


# What to undo on the host when a later create step fails: (leftover kind, pool or "",
# name, the call that removes it).
Undo = tuple[str, str, str, Callable[[Hypervisor], object]]


@transaction
def create_vm(owner: User, name: str, template: Template, host: Host | None = None,
              start: bool = True, progress=None, *, password: str | None = None,
              boot_job_ids: list[int] | None = None, ip_address: str | None = None,
              batch=None) -> VM:
    """Create a VM for ``owner`` from ``template``, on ``host`` or on the host chosen
    by placement, and start it unless ``start`` is False.

    For an image that takes cloud-init, the VM gets a seed with its hostname, the
    owner's SSH keys, ``password`` for the image's login user (as a hash) and the boot
    jobs (defaults, the template's, and ``boot_job_ids`` among those offered to users).
    On a NAT network LouCloud made, it gets a fixed address (``ip_address`` when the
    administrator chose one).

    Raises FieldError (bad name, password, address, a template not offered to the
    owner), QuotaExceeded (his quota or his groups'), Unavailable (no host) or
    ServiceError with libvirt's reason; in every failure nothing is left.

    ``progress(step)`` is called as each step is reached: "prepared", "volume",
    "defined", "starting" (for progress reports, and for tests that break a step).
    ``batch``: the batch (vms/batch.py) it is made for."""
    step = progress or (lambda _step: None)
    name = check_name(name)
    if not may_use_template(owner, template):
        raise FieldError(_l("The template %(template)s is kept for groups %(user)s is not a "
                            "member of.", template=template.name, user=owner.username),
                         "template_id")
    image = template.image
    if host is None:
        host = placement.choose_host(template)
    else:
        placement.check_host_for(template, host)
    settings = get_settings()
    listen = placement.vnc_listen_for(host)
    kind, source = placement.nic_of(template)
    uuid = str(uuidlib.uuid4())
    seed_iso, job_names = _seed(name, uuid, template, owner, password, boot_job_ids)
    if host.is_demo:  # a simulated host boots nothing and takes no uploads
        seed_iso, job_names = None, []
    baseline = placement.cpu_baseline(host) if settings.cpu_mode == "baseline" else None
    vm = _reserve(owner, name, template, host, uuid, batch=batch)
    hv = hypervisor(host)
    pool_name = settings.storage_pool
    undo: list[Undo] = []
    try:
        prep = hv.prepare_for_vms(pool_name, kind, source, want_uefi=image.firmware == "uefi")
        step("prepared")
        if image.firmware == "uefi" and not prep.uefi:
            raise VirtError(_("%(image)s needs UEFI firmware, which %(host)s does not have "
                              "(install the ovmf package there)", image=image.name,
                              host=host.name))
        undo.append((Leftover.VOLUME, pool_name, vm.volume_name,
                     lambda h, n=vm.volume_name: h.delete_volume(pool_name, n)))
        if image.is_iso:  # install from the ISO: a blank disk, the ISO in the drive
            volume = hv.create_blank(pool_name, vm.volume_name, vm.disk_gib * GIB)
        else:
            volume = hv.create_overlay(pool_name, vm.volume_name, vm.disk_gib * GIB,
                                       image.path_on(host.id), image.format)
        step("volume")
        seed_volume = None
        if seed_iso is not None:
            seed_name = f"lc-{vm.uuid}-seed.iso"
            undo.append((Leftover.VOLUME, pool_name, seed_name,
                         lambda h, n=seed_name: h.delete_volume(pool_name, n)))
            seed_volume = hv.upload_volume(pool_name, seed_name, seed_iso)
        nic, note, ip = _nic(host, hv, prep, kind, ip_address, undo)
        spec = _spec(vm, owner, prep, image, volume.path, nic, listen,
                     seed_volume.path if seed_volume else None,
                     image.path_on(host.id) if image.is_iso else None, baseline)
        _define(hv, spec, undo, start, step)
    except (VirtError, ServiceError) as exc:
        _abandon(host, hv, undo, vm.id, exc, "create", {"name": name})
    vm = _finish(vm.id, volume, nic, note, ip, seed_volume, job_names, start,
                 image.id if image.is_iso else None)
    log.info("VM %s (%s) created for %s on %s", vm.name, vm.domain_name, owner.username,
             host.name)
    return vm


def _spec(vm: VM, owner: User, prep: Preparation, image, disk_path: str, nic: Nic | None,
          listen: str, seed_path: str | None, cdrom_path: str | None,
          baseline: str | None) -> DomainSpec:
    """The new VM's domain (create and clone)."""
    return DomainSpec(name=vm.domain_name, uuid=vm.uuid, title=vm.name, vcpus=vm.vcpus,
                      memory_mib=vm.memory_mib, disk_path=disk_path,
                      max_vcpus=vm.max_vcpus, max_memory_mib=vm.max_memory_mib,
                      domain_type=prep.domain_type, arch=prep.arch, os_type=image.os_type,
                      nic=nic, vnc_listen=listen, vm_id=vm.id, owner=owner.username,
                      seed_path=seed_path, cdrom_path=cdrom_path, firmware=image.firmware,
                      cpu_mode=get_settings().cpu_mode, cpu_baseline=baseline)


def _define(hv: Hypervisor, spec: DomainSpec, undo: list[Undo], start: bool,
            step: Callable[[str], None]) -> None:
    undo.append((Leftover.DOMAIN, "", spec.uuid, lambda h, u=spec.uuid: h.remove(u)))
    hv.define(spec)
    step("defined")
    if start:
        step("starting")
        hv.start_new(spec)


def _abandon(host: Host, hv: Hypervisor, undo: list[Undo], vm_id: int, exc: Exception,
             kind: str, names: dict[str, str]) -> NoReturn:
    """A create (or clone: ``kind``) failed at ``exc``: remove what it made on the host
    and the new VM's row (its quota is free again), and raise the refusal. ``names``:
    the new VM's (name), and a clone's source's (source)."""
    _undo(host, hv, undo)
    db.session.rollback()
    db.session.delete(db.session.get(VM, vm_id))
    db.session.commit()
    what = (f"clone {names['source']} as {names['name']}" if kind == "clone"
            else f"create {names['name']}")
    log.warning("%s on %s failed: %s", what, host.name, exc)
    if isinstance(exc, ServiceError):
        raise exc
    if isinstance(exc, HostUnavailable):
        if kind == "clone":
            raise Unavailable(_l("%(host)s stopped answering while %(source)s was being "
                                 "cloned: %(error)s. Nothing was kept.", host=host.name,
                                 error=said.of(exc), **names)) from None
        raise Unavailable(_l("%(host)s stopped answering while %(name)s was being "
                             "created: %(error)s. Nothing was kept.", host=host.name,
                             error=said.of(exc), **names)) from None
    if kind == "clone":
        raise ServiceError(_l("%(host)s could not clone %(source)s as %(name)s: %(error)s",
                              host=host.name, error=said.of(exc), **names)) from None
    raise ServiceError(_l("%(host)s could not create %(name)s: %(error)s", host=host.name,
                          error=said.of(exc), **names)) from None


def _finish(vm_id: int, volume: Volume, nic: Nic | None, note: str | None, ip: str | None,
            seed_volume: Volume | None, job_names: list[str], start: bool,
            cdrom_image_id: int | None) -> VM:
    """The new VM's row once its domain is defined (and started): ready."""
    vm = db.session.get(VM, vm_id)
    forget_states(vm.host)
    vm.volume_path, vm.mac = volume.path, nic.mac if nic else None
    vm.disks[0].volume_path = volume.path
    vm.nic_kind, vm.network = (nic.kind, nic.source or None) if nic else (None, None)
    vm.nic_note, vm.ip_address = note, ip
    vm.seed_volume = seed_volume.name if seed_volume else None
    vm.cdrom_image_id = cdrom_image_id
    vm.boot_job_names = "\n".join(job_names)
    vm.status, vm.status_since = VM.READY, utcnow()
    watching.note_state(vm, "running" if start else "shut off")
    if start:
        vm.started_at = utcnow()
    db.session.commit()
    return vm


def _nic(host: Host, hv: Hypervisor, prep: Preparation, kind: str, chosen_ip: str | None,
         undo: list[Undo]) -> tuple[Nic | None, str | None, str | None]:
    """The VM's NIC, why it has none, and its fixed address: on a NAT network LouCloud
    made, an address is reserved for the new MAC (released again if the create fails)."""
    if kind == "none":
        if chosen_ip:
            raise FieldError(_("This VM has no network card to give an address to."),
                             "ip_address")
        return None, _("its template gives it no network card"), None
    if prep.nic_kind is None or kind == "none":
        if chosen_ip:
            raise FieldError(_("No address on %(host)s: %(problem)s.", host=host.name,
                               problem=prep.nic_problem), "ip_address")
        return None, _("%(problem)s on %(host)s when it was created",
                       problem=prep.nic_problem, host=host.name), None
    mac = _random_mac()
    nic = Nic(prep.nic_kind, prep.nic_source, mac)
    if prep.nic_kind != "network" or prep.network is None or not prep.network.managed:
        if chosen_ip:
            raise FieldError(_("%(network)s is not a network LouCloud gives addresses on.",
                               network=prep.nic_source), "ip_address")
        return nic, None, None
    ip = network_service.reserve_address(host, prep.network, mac, chosen_ip)
    undo.append((Leftover.ADDRESS, prep.network.name, f"{mac} {ip}",
                 lambda h, n=prep.network.name, m=mac, a=ip: h.release_address(n, m, a)))
    return nic, None, ip


def _undo(host: Host, hv: Hypervisor, steps: list[Undo]) -> None:
    """Undo creation steps on the host, newest first. A step is undone even when the
    host never confirmed it (the call may have reached it before it died); what can't be
    removed now (the host is gone) is remembered and removed when it answers."""
    for kind, pool_name, name, remove in reversed(steps):
        try:
            remove(hv)
        except VirtError as exc:
            leftovers.remember(host, kind, name, pool_name, str(exc))
