"""A migration's two hosts (issue 14), for the live move (moving.py) and the offline
one (offline.py) alike: the target made ready (the base image, what an earlier attempt
left, the network and the fixed address, the install medium's path) or tidied when the
VM did not move; the record moved and the source tidied when it did."""
from __future__ import annotations

import ipaddress
import logging

from flask_babel import lazy_gettext as _l

from ...extensions import db
from ...models import VM, Host, ImageLocation, Leftover
from ...virt import AlreadyExists, VirtError
from .. import Conflict, ServiceError, leftovers, said, watching
from .. import networks as network_service
from ..imagecopy import copy_stored
from ..hypervisors import hypervisor
from ..settings import get_settings
from .lifecycle import _end
from .state import forget_states

log = logging.getLogger(__name__)


def base_image_on(ctx, vm: VM, target: Host) -> None:
    """The base image onto the target when it lacks it (the image distribution's copy)."""
    image = vm.image
    if image.is_iso or image.present_on(target.id):
        return
    loc = next((loc for loc in image.locations if loc.host_id == target.id), None)
    if loc is None:
        image.locations.append(ImageLocation(host_id=target.id, present=False,
                                             copy_state="queued"))
    db.session.commit()
    ctx.report(0.0, _l("Copying the image %(image)s to %(host)s first.", image=image.name,
                       host=target.name), force=True)
    copy_stored(ctx, image, {target.id})
    db.session.refresh(image)
    if not image.present_on(target.id):
        loc = next(loc for loc in image.locations if loc.host_id == target.id)
        raise ServiceError(_l("The image %(image)s could not be copied to %(host)s: "
                              "%(error)s", image=image.name, host=target.name,
                              error=said.Stored(loc.error)))


def clear_target(vm: VM, target: Host, names: list[str]) -> None:
    """What an earlier attempt left on the target is replaced now."""
    hv, pool = hypervisor(target), get_settings().storage_pool
    for name in names:
        leftovers.forget(target.id, Leftover.VOLUME, name)
        hv.delete_volume(pool, name)
    leftovers.forget(target.id, Leftover.DOMAIN, vm.uuid)


def check_network(vm: VM, target: Host):
    """The target's network of the VM's card (None: the card is not on a network),
    read from the target now. Raises Conflict when the target has no such network
    active, or when that network cannot give the VM its fixed address (outside its
    range, or held there by another machine): asked before the VM is held "migrating"
    (migrate_vm, placement's choice) and again as the task starts."""
    if vm.nic_kind != "network" or not vm.network:
        return None
    hv = hypervisor(target)
    net = next((n for n in hv.networks() if n.name == vm.network), None)
    if net is None or not net.active:
        raise Conflict(_l("%(host)s has no active network %(network)s for %(name)s's card.",
                          host=target.name, network=vm.network, name=vm.name))
    problem = _address_problem(vm, hv, net)
    if problem:
        raise Conflict(_l("%(host)s cannot take %(name)s with its fixed address: %(problem)s "
                          "there.", host=target.name, name=vm.name, problem=problem))
    return net


def _mine(vm: VM, mac: str) -> bool:
    return mac.lower() == (vm.mac or "").lower()


def _address_problem(vm: VM, hv, net) -> str | None:
    """Why the target's network cannot give the VM its fixed address (None: it can, or
    LouCloud keeps none for it there): the check a chosen address gets at create
    (networks.address_problem), this MAC's own entry and lease not counted (an earlier
    attempt's, replaced by reserve_on)."""
    if not (vm.ip_address and vm.mac) or not net.desc.managed:
        return None
    subnet = net.desc.ipv4()
    held = {h.ip for h in (subnet.hosts if subnet else ()) if not _mine(vm, h.mac)}
    held |= {lease.ip for lease in hv.leases([net.name]).get(net.name, [])
             if not _mine(vm, lease.mac)}
    try:
        addr = ipaddress.IPv4Address(vm.ip_address)
    except ValueError:
        return _l("%(address)s is no IPv4 address", address=vm.ip_address)
    return network_service.address_problem(net.desc, addr, held)


def reserve_on(vm: VM, target: Host) -> bool:
    """The VM's fixed address reserved on the target's network of the same name (the
    same address). The network is read again now (check_network): another machine may
    have taken the address while the volumes were copied, a plain refusal then. This
    MAC's entry from an earlier attempt is replaced (and no longer a leftover to
    remove). Whether one was reserved."""
    net = check_network(vm, target)
    if net is None or not (vm.ip_address and vm.mac) or not net.desc.managed:
        return False
    hv = hypervisor(target)
    subnet = net.desc.ipv4()
    for entry in (subnet.hosts if subnet else ()):
        if _mine(vm, entry.mac):
            leftovers.forget(target.id, Leftover.ADDRESS, f"{vm.mac} {entry.ip}")
            hv.release_address(vm.network, vm.mac, entry.ip)
    try:
        hv.reserve_address(vm.network, vm.mac, vm.ip_address)
    except AlreadyExists:
        raise Conflict(_l("%(host)s cannot take %(name)s with its fixed address: "
                          "%(address)s was taken on %(network)s there meanwhile. %(name)s "
                          "stays on %(source)s.", host=target.name, name=vm.name,
                          address=vm.ip_address, network=vm.network,
                          source=vm.host.name)) from None
    return True


def undo_target(vm: VM, target: Host, created: list[str], reserved: bool) -> None:
    """Remove what the migration made on the target (it did not move); what a host out
    of reach keeps is remembered and removed when it answers."""
    hv, pool = hypervisor(target), get_settings().storage_pool
    held = any(row.kind == Leftover.DOMAIN and row.name == vm.uuid
               for row in leftovers.pending({target.id}))   # settle() could not remove it
    steps = [] if held else [(Leftover.DOMAIN, "", vm.uuid, lambda: hv.remove(vm.uuid))]
    steps += [(Leftover.VOLUME, pool, n, lambda n=n: hv.delete_volume(pool, n))
              for n in created]
    if reserved:
        steps.append((Leftover.ADDRESS, vm.network, f"{vm.mac} {vm.ip_address}",
                      lambda: hv.release_address(vm.network, vm.mac, vm.ip_address)))
    for kind, pool_name, name, remove in steps:
        try:
            remove()
        except VirtError as exc:
            leftovers.remember(target, kind, name, pool_name, str(exc))


def tidy_source(vm: VM, source: Host, names: list[str], ip: tuple | None) -> None:
    """After the move: the source's volumes and fixed address go (or are remembered)."""
    hv, pool = hypervisor(source), get_settings().storage_pool
    steps = [(Leftover.VOLUME, pool, n, lambda n=n: hv.delete_volume(pool, n))
             for n in names]
    if ip:
        network, mac, addr = ip
        steps.append((Leftover.ADDRESS, network, f"{mac} {addr}",
                      lambda: hv.release_address(network, mac, addr)))
    for kind, pool_name, name, remove in steps:
        try:
            remove()
        except VirtError as exc:
            leftovers.remember(source, kind, name, pool_name, str(exc))


def move_record(vm: VM, source: Host, target: Host, state: str) -> None:
    ip = (vm.network, vm.mac, vm.ip_address) if vm.ip_address and vm.network else None
    vm.host_id = target.id
    db.session.flush()
    db.session.refresh(vm)
    watching.note_state(vm, state)
    _end(vm)
    forget_states(source)
    forget_states(target)
    tidy_source(vm, source, vm.volume_names, ip)
    log.info("VM %s moved from %s to %s", vm.name, source.name, target.name)



def cdrom_paths(vm: VM, source: Host, target: Host) -> dict[str, str]:
    image = vm.cdrom_image
    if image is None:
        return {}
    if not image.present_on(target.id):
        raise Conflict(_l("%(host)s lacks the install medium %(image)s in %(name)s's drive; "
                          "eject it first.", host=target.name, image=image.name, name=vm.name))
    return {image.path_on(source.id): image.path_on(target.id)}
