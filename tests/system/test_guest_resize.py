"""Resize and disks (issue 14) seen by the real guest on the lab's real libvirtd and
QEMU: a stopped VM's new sizes and a disk added while it was off are there at its
start; a data disk hot-plugged is in the guest's lsblk, grown live it shows its new
size, detached it is gone, attached again it is back with its data, detached from a
paused guest it stays until the guest runs again (held, not deleted); vCPUs and memory
resized live are what nproc and /proc/meminfo say, and stay in the definition; past its
room a resize waits for the next boot.

One guest boots for the module (about a minute under TCG), after its stop-time changes,
and the checks run in order on it."""
from __future__ import annotations

import time

import pytest

from loucloud.extensions import db
from loucloud.models import VM, Host, Template, User
from loucloud.services import Conflict
from loucloud.services.hypervisors import hypervisor
from loucloud.services.vms import create as vm_create
from loucloud.services.vms import disks, hardware, lifecycle, resize
from tests.support.guest import (Guest, boot_bound, publish_guest, tear_down_guest_world,
                                 wait_for)

SUBNET = "10.78.0.0/24"
GIB = 1024 ** 3


@pytest.fixture(scope="module")
def world(lab, guest_image, module_app, ssh_key):
    """The real guest published on h1 with a NAT network "grow", and alice's VM
    "grower" (1 vCPU, 512 MiB: room for 4 vCPUs and 2 GiB), created shut off."""
    app = module_app
    with app.app_context():
        made = publish_guest(lab, guest_image, ssh_key, "grow", SUBNET, "small")
        vm = vm_create.create_vm(db.session.get(User, made["alice"]), "grower",
                                 db.session.get(Template, made["template"]),
                                 db.session.get(Host, made["host"]), start=False)
        ids = {"vm": vm.id, "ip": vm.ip_address}
    yield {"app": app, "guest": Guest(lab.host(1), ids["ip"], ssh_key), **ids}
    tear_down_guest_world(app, "grow", [lab.host(1).uri])


def _vm(world) -> VM:
    return db.session.get(VM, world["vm"])


def _disk_bytes(guest: Guest) -> dict[str, int]:
    """{device: size in bytes} of the guest's whole disks (lsblk)."""
    out = guest.ssh("lsblk -b -d -n -o NAME,SIZE,TYPE")
    return {name: int(size) for name, size, kind in
            (line.split() for line in out.splitlines()) if kind == "disk"}


def _mem_total_mib(guest: Guest) -> int:
    line = guest.ssh("grep MemTotal /proc/meminfo")
    return int(line.split()[1]) // 1024


@pytest.mark.timeout(600)   # the module's one boot, up to boot_bound() under TCG
def test_a_stopped_vms_new_sizes_and_a_disk_added_while_off_are_there_at_its_start(world):
    guest = world["guest"]
    with world["app"].app_context():
        message = resize.resize_vm(_vm(world), 3, 768)
        assert message.endswith("it gets them at its next start."), message
        assert "at its next start" in disks.add_disk(_vm(world), 2)
        lifecycle.act_on_vm(_vm(world), "start")
    started = time.monotonic()
    guest.wait_for_ssh(boot_bound())
    print(f"\n  first boot to SSH and cloud-init done: {time.monotonic() - started:.0f} s")
    assert guest.ssh("nproc").strip() == "3"
    assert 600 < _mem_total_mib(guest) <= 768
    assert _disk_bytes(guest) == {"vda": 3 * GIB, "vdb": 2 * GIB}
    with world["app"].app_context():
        assert hardware.hardware(_vm(world))["pending"] == ""


def test_a_disk_added_live_is_seen_grown_and_detached(world):
    guest = world["guest"]
    assert "vdc" not in _disk_bytes(guest)   # vda, and vdb added while it was off
    with world["app"].app_context():
        message = disks.add_disk(_vm(world), 1)
    assert "plugged in: the guest sees it now as /dev/vdc" in message
    wait_for(lambda: _disk_bytes(guest).get("vdc") == GIB, 60, "vdc (1 GiB) in lsblk")
    guest.ssh("sudo mkfs.ext4 -q /dev/vdc && sudo mount /dev/vdc /mnt && "
              "echo kept | sudo tee /mnt/note >/dev/null && sudo umount /mnt")
    with world["app"].app_context():
        message = disks.grow_disk(_vm(world), "vdc", 3)
    assert "the guest sees the larger disk now" in message
    wait_for(lambda: _disk_bytes(guest).get("vdc") == 3 * GIB, 60, "vdc grown to 3 GiB")
    assert guest.ssh("sudo mount /dev/vdc /mnt && cat /mnt/note && sudo umount /mnt"
                     ).strip() == "kept"
    with world["app"].app_context():
        assert "was detached" in disks.detach_disk(_vm(world), "vdc")
        seen = hardware.hardware(_vm(world))
    wait_for(lambda: "vdc" not in _disk_bytes(guest), 60, "vdc gone from lsblk")
    assert seen["disks"]["vdc"]["capacity_gib"] == "3.00 GiB"
    # attached again: plugged in, with what it held
    with world["app"].app_context():
        message = disks.attach_disk(_vm(world), "vdc")
    assert message == "vdc was attached to grower again and plugged in: the guest sees it " \
                      "now as /dev/vdc.", message
    wait_for(lambda: _disk_bytes(guest).get("vdc") == 3 * GIB, 60, "vdc back in lsblk")
    assert guest.ssh("sudo mount /dev/vdc /mnt && cat /mnt/note && sudo umount /mnt"
                     ).strip() == "kept"
    # a paused guest cannot let go of it: detached from the definition, held until
    # it runs again; it is not deleted meanwhile
    with world["app"].app_context():
        lifecycle.act_on_vm(_vm(world), "pause")
        message = disks.detach_disk(_vm(world), "vdc")
        assert message.startswith("The guest of grower has not let go of vdc yet"), message
        assert [(d.target, d.attached) for d in _vm(world).disks] == \
            [("vda", True), ("vdb", True), ("vdc", False)]
        with pytest.raises(Conflict, match="has not let go of vdc yet"):
            disks.delete_disk(_vm(world), "vdc")
        lifecycle.act_on_vm(_vm(world), "resume")
    wait_for(lambda: "vdc" not in _disk_bytes(guest), 60, "vdc let go after the resume")
    with world["app"].app_context():
        assert "was deleted" in disks.delete_disk(_vm(world), "vdc")


def test_the_system_disk_grows_live(world):
    guest = world["guest"]
    before = _disk_bytes(guest)["vda"]
    with world["app"].app_context():
        disks.grow_disk(_vm(world), "vda", 4)
    wait_for(lambda: _disk_bytes(guest)["vda"] == 4 * GIB, 60, "vda grown to 4 GiB")
    assert before == 3 * GIB


def test_vcpus_and_memory_resized_live_are_seen_by_the_guest(world):
    guest = world["guest"]
    assert guest.ssh("nproc").strip() == "3"
    before = _mem_total_mib(guest)
    assert 600 < before <= 768
    with world["app"].app_context():
        message = resize.resize_vm(_vm(world), 4, 1024)
    assert message.startswith("grower now has 4 vCPUs and 1024 MiB of memory, running."), \
        message
    wait_for(lambda: guest.ssh("nproc").strip() == "4", 60, "nproc to say 4")
    wait_for(lambda: _mem_total_mib(guest) > before + 200, 60, "MemTotal to grow by 256 MiB")


def test_past_its_room_it_waits_for_the_next_boot(world):
    with world["app"].app_context():
        message = resize.resize_vm(_vm(world), 6, None)
        assert "6 vCPUs: applies at next boot (it runs with room for 4)" in message
        assert hardware.hardware(_vm(world))["pending"] == \
            "At its next boot: 6 vCPUs (now 4)."
        # what it boots with next: the live resize went into the definition too
        defined = hypervisor(_vm(world).host).sizes(_vm(world).uuid)
    assert (defined.vcpus, defined.memory_mib, defined.live_vcpus) == (6, 1024, 4), defined
    assert world["guest"].ssh("nproc").strip() == "4"


