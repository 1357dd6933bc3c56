"""Snapshots, suspend to disk, clone and rebuild of the real guest (issue 14) on the
lab's real libvirtd and QEMU: a memory snapshot brings back the running machine (the
file as it was, the same boot, its uptime going on from the snapshot), a data disk
hot-plugged after it staying plugged in; suspend to disk
resumes the same boot; a clone of the shut-off VM boots with the source's file under
its own name and address; a rebuild keeps the address and gives a fresh disk (a new
overlay holding nothing: the guest would read the image's own files, the file gone)
and a new first-boot seed (a new instance, the owner's key, the new password).

One VM boots for the module, then its clone (each boot costs about a minute under
TCG); the rebuilt disk is read on the host, not booted: its first boot would be any
new VM's. The tests run in order."""
from __future__ import annotations

import pytest
import yaml
from passlib.hash import sha512_crypt

from loucloud.extensions import db
from loucloud.models import VM
from loucloud.services import cloudinit
from loucloud.services import tasks as task_service
from loucloud.services.tasklist import says
from loucloud.services.hypervisors import hypervisor
from loucloud.services.vms import clone, disks, lifecycle, rebuild, snapshots, state
from tests.support.guest import (Guest, boot_bound, boot_first_vm, files_on_disk,
                                 publish_guest, tear_down_guest_world, wait_for)

PASSWORD = "first login 4711"
SUBNET = "10.78.0.0/24"
MARKER = "/home/debian/marker"
HOSTNAME = "/etc/hostname"


@pytest.fixture(scope="module")
def world(lab, guest_image, module_app, ssh_key):
    app = module_app
    with app.app_context():
        made = publish_guest(lab, guest_image, ssh_key, "snaps", SUBNET, "small")
        ids, guest = boot_first_vm(lab, ssh_key, made, "snap-1", PASSWORD)
    yield {"app": app, "guest": guest, "lab": lab, "key": ssh_key, **ids}
    tear_down_guest_world(app, "snaps", [lab.host(1).uri])


def _vm(world) -> VM:
    return db.session.get(VM, world["vm"])


def _uptime(guest: Guest) -> float:
    return float(guest.ssh("cut -d' ' -f1 /proc/uptime"))


@pytest.mark.timeout(600)
def test_revert_to_a_memory_snapshot_brings_back_the_running_machine(world):
    guest, app = world["guest"], world["app"]
    guest.ssh(f"echo before > {MARKER}; sync")
    boot = guest.boot_id()
    with app.app_context():
        message = snapshots.create_snapshot(_vm(world), "running-before")
        assert message == "Snapshot running-before of snap-1 taken, with its running machine."
        taken_at_uptime = _uptime(guest)
        [row] = _vm(world).snapshots
        assert row.memory and row.size_bytes and row.size_bytes > 1 << 20  # its memory
    guest.ssh(f"echo after > {MARKER}; sync")
    with app.app_context():   # a disk hot-plugged after the snapshot stays attached
        assert "plugged in" in disks.add_disk(_vm(world), 1)
    wait_for(lambda: "vdb" in guest.ssh("lsblk -d -n -o NAME"), 60, "vdb in lsblk")
    with app.app_context():
        message = snapshots.revert_snapshot(_vm(world), "running-before")
    assert message == "snap-1 is back at snapshot running-before: running, as it was " \
                      "then. Its data disk vdb (attached after the snapshot) stays " \
                      "attached, as it is now.", message
    wait_for(guest.answers, 120, "SSH after the revert")
    wait_for(lambda: "vdb" in guest.ssh("lsblk -d -n -o NAME"), 60, "vdb plugged in again")
    assert guest.ssh(f"cat {MARKER}").strip() == "before"
    assert guest.boot_id() == boot                   # the same boot, not a restart
    assert _uptime(guest) >= taken_at_uptime - 1     # its uptime went on from the snapshot


@pytest.mark.timeout(600)
def test_suspend_to_disk_and_resume_the_same_boot(world):
    guest, app = world["guest"], world["app"]
    boot = guest.boot_id()
    with app.app_context():
        assert "saved to disk" in lifecycle.act_on_vm(_vm(world), "save")
        assert snapshots.has_saved_state(_vm(world))
        lifecycle.act_on_vm(_vm(world), "start")
        assert not snapshots.has_saved_state(_vm(world))
    wait_for(guest.answers, 120, "SSH after the resume")
    assert guest.boot_id() == boot
    assert guest.ssh(f"cat {MARKER}").strip() == "before"


@pytest.mark.timeout(900)
def test_clone_boots_the_sources_file_and_rebuild_gives_a_fresh_disk(world):
    guest, app, lab_host = world["guest"], world["app"], world["lab"].host(1)
    guest.ssh("sudo poweroff || true", timeout=30)
    with app.app_context():
        vm = _vm(world)
        wait_for(lambda: _state(vm) == "shut off", 120, "snap-1 to power off")
        # what its disk holds now (the host reads it as the guest would)
        assert files_on_disk(lab_host, vm.volume_path, [MARKER, HOSTNAME]) == \
            {MARKER: "before\n", HOSTNAME: "snap-1\n"}
        old_seed = _seed(vm, lab_host)
        snapshots.create_snapshot(vm, "off", memory=False)
        task = clone.clone_vm(vm, "snap-2", password=PASSWORD)
        task_service.execute(task.id)   # the worker's part: the copy
        db.session.refresh(task)
        assert task.state == "succeeded", task.error
        # an overlay on the image again, not a full copy
        assert "(an overlay on debian holding what snap-1 changed)" in says(task.result)
        copy_ip = state.find_vm(vm.owner.username, "snap-2").ip_address
        assert copy_ip and copy_ip != world["ip"] and copy_ip.startswith("10.78.0.")
        message = rebuild.rebuild_vm(_vm(world), "third login 4713")
        assert message == "snap-1 was rebuilt from debian: its disk is new, its first " \
                          "boot runs again."
        vm = _vm(world)
        assert vm.snapshots == [] and vm.ip_address == world["ip"]
        assert _state(vm) == "shut off"   # as it was: a rebuild does not start it
        # The rebuilt disk without booting it (a first boot is what every new VM of
        # these tests shows): a new overlay on the image, holding nothing yet, so the
        # guest reads the image's own files (its first boot has not run: hostname
        # "debian", no marker) ...
        [volume] = [v for v in hypervisor(vm.host).pool_volumes("loucloud")
                    if v.path == vm.volume_path]
        assert volume.backing_path == vm.image.path_on(vm.host_id)
        assert volume.capacity == 3 * 1024 ** 3 and volume.allocation < 1024 ** 2, volume
        # (the volume its definition boots)
        assert hypervisor(vm.host).disk_places(vm.uuid).config["vda"] == vm.volume_path
        assert files_on_disk(lab_host, vm.volume_path, [MARKER, HOSTNAME]) == \
            {MARKER: None, HOSTNAME: "debian\n"}
        # ... and a new first-boot seed: a new instance (cloud-init runs again), its
        # name, the owner's key and the new password
        new_seed = _seed(vm, lab_host)
        assert new_seed["instance-id"] != old_seed["instance-id"]
        assert new_seed["hostname"] == old_seed["hostname"] == "snap-1"
        assert new_seed["keys"] == old_seed["keys"] == [world["key"].public]
        assert sha512_crypt.verify("third login 4713", new_seed["password"])
        assert not sha512_crypt.verify(PASSWORD, new_seed["password"])
    copy = Guest(lab_host, copy_ip, world["key"])
    copy.wait_for_ssh(boot_bound())
    assert copy.ssh("hostname").strip() == "snap-2"
    assert copy.ssh(f"cat {MARKER}").strip() == "before"


def _seed(vm: VM, lab_host) -> dict:
    """What the VM's first-boot seed (the NoCloud ISO on its host) says."""
    info = hypervisor(vm.host).volume_info("loucloud", vm.seed_volume)
    files = cloudinit.read_iso(lab_host.host_path(info.path).read_bytes())
    meta, user = yaml.safe_load(files["meta-data"]), yaml.safe_load(files["user-data"])
    [login] = user["chpasswd"]["users"]
    return {"instance-id": meta["instance-id"], "hostname": user["hostname"],
            "keys": user["ssh_authorized_keys"], "password": login["password"]}


def _state(vm: VM) -> str:
    return hypervisor(vm.host).domain_state(vm.uuid)
