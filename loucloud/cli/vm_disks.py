"""manage.py vms resize|disks|disk-add|disk-attach|disk-detach|disk-delete|disk-grow (issue 14),
over the same services as the VM page."""
import click
from flask_babel import gettext as _

from ..services.vms import disks, resize
from ..services.vms import hardware as vm_hardware
from ..services.vms import state
from .common import audited, echo_rows, service
from .vms import OWNER, group


def _vm(owner: str, name: str):
    return service(lambda: state.find_vm(owner, name))


@group.command("resize")
@click.argument("name")
@OWNER
@click.option("--vcpus", default=None, help="The new number of vCPUs.")
@click.option("--memory", "memory_mib", default=None, metavar="MIB",
              help="The new memory in MiB.")
@audited("vms.resize")
def resize_command(name: str, owner: str, vcpus, memory_mib) -> None:
    """Give the VM NAME of --owner new vCPUs and/or memory (a running VM at once where
    it can, else at its next boot: the answer says which)."""
    vm = _vm(owner, name)
    click.echo(service(lambda: resize.resize_vm(vm, vcpus, memory_mib)))


@group.command("disks")
@click.argument("name")
@OWNER
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def disks_command(name: str, owner: str, as_json: bool) -> None:
    """List the disks of the VM NAME of --owner, with their allocation on the host."""
    vm = _vm(owner, name)
    live = vm_hardware.hardware(vm)
    found = live.get("disks", {})
    rows = [{"disk": d.target, "size_gib": d.size_gib, "system": d.system,
             "attached": d.attached, "volume": d.volume_name,
             "allocation": (found.get(d.target) or {}).get("allocation_gib") or ""}
            for d in vm.disks]
    echo_rows(rows, as_json, ["disk", "size_gib", "allocation", "system", "attached", "volume"])
    if live.get("error"):
        click.echo(_("warning: %(message)s", message=live["error"]), err=True)
    if live.get("pending"):
        click.echo(live["pending"])


@group.command("disk-add")
@click.argument("name")
@OWNER
@click.option("--size", "size_gib", required=True, metavar="GIB", help="Its size in GiB.")
@audited("vms.disk_add")
def disk_add(name: str, owner: str, size_gib) -> None:
    """Add a blank data disk to the VM NAME of --owner (hot-plugged when it runs)."""
    vm = _vm(owner, name)
    click.echo(service(lambda: disks.add_disk(vm, size_gib)))


@group.command("disk-detach")
@click.argument("name")
@click.argument("disk")
@OWNER
@audited("vms.disk_detach")
def disk_detach(name: str, disk: str, owner: str) -> None:
    """Detach the data disk DISK (vdb...) from the VM NAME; its volume is kept."""
    vm = _vm(owner, name)
    click.echo(service(lambda: disks.detach_disk(vm, disk)))


@group.command("disk-attach")
@click.argument("name")
@click.argument("disk")
@OWNER
@audited("vms.disk_attach")
def disk_attach(name: str, disk: str, owner: str) -> None:
    """Attach the detached data disk DISK (vdb...) to the VM NAME again (hot-plugged
    when it runs; at the next free target when its own is taken)."""
    vm = _vm(owner, name)
    click.echo(service(lambda: disks.attach_disk(vm, disk)))


@group.command("disk-delete")
@click.argument("name")
@click.argument("disk")
@OWNER
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@audited("vms.disk_delete")
def disk_delete(name: str, disk: str, owner: str, yes: bool) -> None:
    """Delete the data disk DISK of the VM NAME and everything on it (detached first)."""
    vm = _vm(owner, name)
    if not yes:
        click.confirm(_("Delete %(disk)s of %(name)s and everything on it for good?",
                        disk=disk, name=name), abort=True)
    click.echo(service(lambda: disks.delete_disk(vm, disk)))


@group.command("disk-grow")
@click.argument("name")
@click.argument("disk")
@OWNER
@click.option("--size", "size_gib", required=True, metavar="GIB", help="Its new size in GiB.")
@audited("vms.disk_grow")
def disk_grow(name: str, disk: str, owner: str, size_gib) -> None:
    """Grow the disk DISK (vda, vdb...) of the VM NAME to --size GiB (never smaller)."""
    vm = _vm(owner, name)
    click.echo(service(lambda: disks.grow_disk(vm, disk, size_gib)))
