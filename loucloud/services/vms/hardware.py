"""What only a VM's host can tell of its disks and sizes (issue 14), for the VM page
(asked after the page is shown), its JSON, the API and the command line: each disk's
size and allocation, a detached disk the running guest still holds, a resize waiting
for the next boot."""
from __future__ import annotations

from flask_babel import gettext as _

from ...models import VM
from ...virt import DomainNotFound, VirtError
from ..hypervisors import hypervisor
from ..settings import get_settings
from .create import GIB


def hardware(vm: VM) -> dict:
    """What only the host can tell of the VM's disks and sizes (the page asks after it
    is shown): each disk's size and allocation (said, and in bytes), whether a detached
    disk is still held by the running guest, and a resize waiting for the next boot.
    One call for the sizes and one per disk for the volumes (one more for a VM with a
    detached disk); {"error": ...} when the host cannot tell now."""
    hv = hypervisor(vm.host)
    try:
        sizes = hv.volume_sizes(get_settings().storage_pool, [d.volume_name for d in vm.disks])
        now = hv.sizes(vm.uuid)
        # a detached disk the running guest has not let go of yet
        live = set((hv.disk_places(vm.uuid).live or {}).values()) \
            if any(not d.attached for d in vm.disks) else set()
    except DomainNotFound:
        return {"error": _("The domain is missing on %(host)s.", host=vm.host.name)}
    except VirtError as exc:
        return {"error": _("%(host)s cannot tell now: %(error)s", host=vm.host.name,
                           error=exc)}
    disks = {}
    for d in vm.disks:
        capacity, allocation = sizes.get(d.volume_name, (None, None))
        disks[d.target] = {"capacity_gib": _gib(capacity), "allocation_gib": _gib(allocation),
                           "capacity_bytes": capacity, "allocation_bytes": allocation,
                           "found": capacity is not None,
                           "held": not d.attached and bool(d.volume_path) and
                           d.volume_path in live}
    pending = []
    if now.live_vcpus is not None and now.live_vcpus != now.vcpus:
        pending.append(_("%(vcpus)s vCPUs (now %(live)s)", vcpus=now.vcpus,
                         live=now.live_vcpus))
    # Memory waits for the next boot only past the running maximum: below it the balloon
    # takes the new size live (the live figure is what the guest's balloon gave back so
    # far, which lags, and is the maximum while the guest boots).
    if now.live_max_memory_mib is not None and now.memory_mib > now.live_max_memory_mib:
        pending.append(_("%(memory)s MiB of memory (now at most %(live)s MiB)",
                         memory=now.memory_mib, live=now.live_max_memory_mib))
    return {"disks": disks,
            "pending": _("At its next boot: %(sizes)s.", sizes=", ".join(pending))
            if pending else "",
            "vcpus": now.live_vcpus if now.live_vcpus is not None else now.vcpus,
            "memory_mib": now.live_memory_mib if now.live_memory_mib is not None
            else now.memory_mib}


def _gib(value: int | None) -> str | None:
    if value is None:
        return None
    return f"{value / GIB:.2f} GiB" if value >= GIB / 100 or value == 0 else \
        f"{value / 1024 ** 2:.1f} MiB"
