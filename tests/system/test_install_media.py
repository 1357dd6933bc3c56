"""Install media on the lab's real libvirtd and QEMU: an ISO uploaded to LouCloud and
copied to the host by its task, inserted into a VM's CD-ROM drive (the page), booted
from, ejected, and the VM boots from its disk again; a template on an ISO gives a VM a
blank disk with the ISO inserted, which boots the ISO.

The ISO (tests/support/bootiso.py) is small and real: ISOLINUX from Debian's isolinux
package booting the real guest's kernel with a marker on its command line, so the guest
says where it started from. Installing a whole OS under TCG would take far too long; a
VM whose disk holds the guest proves the boot order both ways."""
from __future__ import annotations

import socket
import time

import pytest

from loucloud.extensions import db
from loucloud.imagebuild import KERNEL_ARGS
from loucloud.models import VM, Host, Image, Template, User
from loucloud.services import images as image_service
from loucloud.services import tasks as task_service
from loucloud.services import templates as template_service
from loucloud.services import uploads
from loucloud.services.hypervisors import hypervisor, pool
from loucloud.services.vms import create as vm_create
from loucloud.services.vms import lifecycle
from tests.conftest import Client
from tests.support import bootiso
from tests.support.guest import Guest, boot_bound, publish_guest, wait_for

SUBNET = "10.78.0.0/24"
ISO_NAME = "Test installer"


def _upload_and_copy(app, admin_id: int, path, host_id: int) -> int:
    """Through the upload service in chunks, then the copy task as the worker runs it."""
    with app.app_context():
        admin = db.session.get(User, admin_id)
        up = uploads.begin(admin, ISO_NAME, path.name, path.stat().st_size,
                           host_ids=[host_id])
        with open(path, "rb") as f:
            offset = 0
            while offset < up.size:
                f.seek(offset)
                length = min(app.config["UPLOAD_CHUNK_BYTES"], up.size - offset)
                offset = uploads.receive(admin, up.id, offset, f.read, length)
        image, task = uploads.finish(admin, up.id)
        task_service.execute(task.id)
        assert db.session.get(type(task), task.id).state == "succeeded"
        assert image.format == "iso" and image.present_on(host_id)
        return image.id


@pytest.fixture(scope="module")
def world(lab, guest_image, module_app, ssh_key, tmp_path_factory):
    reason = bootiso.unavailable_reason()
    if reason:
        pytest.skip(reason)
    app = module_app
    iso = bootiso.build(guest_image, tmp_path_factory.mktemp("iso") / "installer.iso",
                        KERNEL_ARGS)
    with app.app_context():
        made = publish_guest(lab, guest_image, ssh_key, "media", SUBNET, "from-disk")
        ids = {"admin": made["admin"], "alice": made["alice"], "host": made["host"],
               "disk_template": made["template"]}
    ids["iso"] = _upload_and_copy(app, ids["admin"], iso, ids["host"])
    with app.app_context():
        iso_template = template_service.create_template(
            "install", template_service.Sizes(1, 512, 2),
            db.session.get(Image, ids["iso"]),
            network=template_service.Network("network", "media"))
        ids["iso_template"] = iso_template.id
    yield {"app": app, **ids}
    with app.app_context():
        for row in db.session.execute(db.select(VM)).scalars().all():
            lifecycle.delete_vm(row)
        template_service.delete_template(db.session.get(Template, ids["iso_template"]))
        image_service.delete_image(db.session.get(Image, ids["iso"]), delete_copies=True)
        pool().call(lab.host(1).uri, _forget, timeout=30)


def _forget(conn) -> None:
    net = conn.networkLookupByName("media")
    net.destroy()
    net.undefine()
    conn.storagePoolLookupByName("loucloud").storageVolLookupByName(
        image_service.volume_name_for("debian")).delete(0)


def _cmdline(guest: Guest) -> str:
    return guest.ssh("cat /proc/cmdline")


@pytest.mark.timeout(600)  # one boot of the real guest, up to boot_bound() under TCG
def test_an_iso_inserted_boots_and_after_eject_the_disk_boots(world, lab, ssh_key):
    app = world["app"]
    with app.app_context():
        vm = vm_create.create_vm(db.session.get(User, world["alice"]), "rescue-me",
                                 db.session.get(Template, world["disk_template"]),
                                 db.session.get(Host, world["host"]), start=False)
        vm_id, address = vm.id, vm.ip_address
    alice = Client(app)
    alice.login("alice")
    page = alice.get(f"/vms/{vm_id}").get_data(as_text=True)
    assert "Empty: the VM boots from its disk." in page and ISO_NAME in page
    r = alice.post(f"/vms/{vm_id}/media", {"image_id": str(world["iso"])},
                   follow_redirects=True)
    assert f"{ISO_NAME} is in the CD-ROM drive of rescue-me" in r.get_data(as_text=True)
    assert alice.post(f"/vms/{vm_id}/start").status_code == 302
    guest = Guest(lab.host(1), address, ssh_key)
    guest.wait_for_ssh(boot_bound())
    assert bootiso.MARKER in _cmdline(guest)  # it started from the CD-ROM's kernel

    r = alice.post(f"/vms/{vm_id}/eject", follow_redirects=True)
    assert f"{ISO_NAME} ejected: rescue-me boots from its disk." in r.get_data(as_text=True)
    assert "Empty: the VM boots from its disk." in r.get_data(as_text=True)
    wait_for(lambda: bootiso.VOLUME_ID not in guest.ssh("lsblk -rno LABEL"), 30,
             "the disc to leave the guest")
    # Into the running VM's drive again (the guest's tray may be locked: forced open).
    r = alice.post(f"/vms/{vm_id}/media", {"image_id": str(world["iso"])},
                   follow_redirects=True)
    assert f"{ISO_NAME} is in the CD-ROM drive" in r.get_data(as_text=True)
    with app.app_context():
        vm = db.session.get(VM, vm_id)
        live = dict(hypervisor(vm.host).status(vm.uuid).cdroms)
    assert live["hdc"].endswith(".iso")
    wait_for(lambda: bootiso.VOLUME_ID in guest.ssh("lsblk -rno LABEL"), 30,
             "the guest to see the disc")

    # Ejected again, a reset boots the disk: its own boot loader (SYSLINUX, where the
    # CD has ISOLINUX) starts its own kernel (no marker on the command line). The
    # serial line shows it within seconds; the rest of that boot is any VM's.
    r = alice.post(f"/vms/{vm_id}/eject", follow_redirects=True)
    assert f"{ISO_NAME} ejected: rescue-me boots from its disk." in r.get_data(as_text=True)
    guest.ssh("sync")   # a reset is a power cut: what the first boot wrote, on the disk
    with app.app_context():
        vm = db.session.get(VM, vm_id)
        assert dict(hypervisor(vm.host).status(vm.uuid).cdroms)["hdc"] == ""
        bridge = hypervisor(vm.host).open_serial(vm.uuid)
    try:
        assert alice.post(f"/vms/{vm_id}/reset").status_code == 302
        seen = _read_until(bridge.socket, "Command line: ", 120)
        seen += _read_until(bridge.socket, "\n", 30)
    finally:
        bridge.close()
    booted_by, after = seen.split("Command line: ", 1)
    command_line = after.splitlines()[0]
    assert "SYSLINUX" in booted_by and "ISOLINUX" not in booted_by, booted_by[-800:]
    assert "root=LABEL=root" in command_line and bootiso.MARKER not in command_line, \
        command_line


def test_a_template_on_an_iso_gives_a_blank_disk_that_boots_the_iso(world, lab):
    app = world["app"]
    with app.app_context():
        vm = vm_create.create_vm(db.session.get(User, world["alice"]), "fresh-install",
                                 db.session.get(Template, world["iso_template"]),
                                 db.session.get(Host, world["host"]))
        assert vm.cdrom_image_id == world["iso"]
        bridge = hypervisor(vm.host).open_serial(vm.uuid)
        status = hypervisor(vm.host).status(vm.uuid)
    try:
        seen = _read_until(bridge.socket, "does not exist", 180)
    finally:
        bridge.close()
    # The ISO's kernel ran (its marker) and found the VM's disk blank: nothing installed.
    assert bootiso.MARKER in seen and "LABEL=root does not exist" in seen
    drive = dict(status.cdroms)["hdc"]  # the install drive holds the host's copy
    assert drive.endswith(".iso") and "/loucloud/" in drive
    with app.app_context():
        info = hypervisor(db.session.get(Host, world["host"])).volume_info(
            "loucloud", db.session.get(VM, vm.id).volume_name)
    assert (info.format, info.virtual_size) == ("qcow2", 2 * 1024 ** 3)  # blank, its size


def _read_until(sock: socket.socket, word: str, seconds: float) -> str:
    sock.settimeout(2)
    seen, deadline = "", time.monotonic() + seconds
    while word not in seen:
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds} s for {word!r}; seen: {seen[-800:]!r}")
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        seen += data.decode(errors="replace")
    return seen
