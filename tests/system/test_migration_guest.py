"""Live migration of the real guest (issue 14) between the lab's two real libvirtd + QEMU
hosts while a process in it keeps writing: afterwards the guest runs on h2, the same
boot (its uptime went on), its files intact (a counter appended every 0.1 s has no gap
and goes on; a file written before reads back the same from the target's disk), its
address unchanged, and LouCloud's record names h2.

The image is on both hosts (the same path); QEMU copies the overlay while the guest
writes. One boot for the module (about a minute under TCG)."""
from __future__ import annotations

import pytest

from loucloud.extensions import db
from loucloud.models import VM, Host, Image, Task, User
from loucloud.services import hosts as host_service
from loucloud.services import images as image_service
from loucloud.services import maintenance
from loucloud.services import networks as network_service
from loucloud.services import tasks as task_service
from loucloud.services.tasklist import says
from loucloud.services.hypervisors import hypervisor
from loucloud.services.settings import get_settings
from loucloud.services.vms import migration as migration_service
from tests.support.guest import (Guest, boot_first_vm, publish_guest, tear_down_guest_world,
                                 wait_for)

PASSWORD = "first login 4711"
SUBNET = "10.79.0.0/24"
NETWORK = "movers"
COUNTER = "/home/debian/counter"
BLOB = "/home/debian/blob"
STOP = "/home/debian/stop"
# a counter line every 0.1 s; 16 MiB rewritten with fsync, its checksum beside it, in
# rounds (the disk changes while QEMU copies it); both until STOP appears
WRITERS = [
    f"i=0; while [ ! -e {STOP} ]; do i=$((i+1)); echo $i >> {COUNTER}; sleep 0.1; done",
    f"cd /home/debian; while [ ! -e {STOP} ]; do "
    "dd if=/dev/urandom of=during.new bs=1M count=16 conv=fsync 2>/dev/null; "
    "sha256sum < during.new > sum.new; mv during.new during; mv sum.new during.sum; "
    "sync; sleep 0.5; done; touch stopped"]


@pytest.fixture(scope="module")
def world(lab, guest_image, module_app, ssh_key):
    app = module_app
    with app.app_context():
        made = publish_guest(lab, guest_image, ssh_key, NETWORK, SUBNET, "small")
        admin = db.session.get(User, made["admin"])
        h2 = host_service.add_host("h2", lab.host(2).uri)
        assert network_service.create_network(NETWORK, SUBNET, [h2]) == [(h2, None)]
        # the image on h2 too, at the same path (as an administrator copies a file
        # added by path): the migration then copies the overlay only
        pool_name, hv = get_settings().storage_pool, hypervisor(h2)
        hv.ensure_pool(pool_name)
        hv.upload_file(pool_name, image_service.volume_name_for("debian"), str(guest_image))
        image = db.session.execute(db.select(Image).filter_by(name="debian")).scalar_one()
        assert image_service.recheck_image(image) == [] and image.present_on(h2.id)
        for host, lab_host in ((db.session.get(Host, made["host"]), lab.host(1)),
                               (h2, lab.host(2))):
            maintenance.set_migration_address(admin, host, lab_host.migration_address)
        ids, guest = boot_first_vm(lab, ssh_key, made, "mover-1", PASSWORD)
        ids.update(admin=made["admin"], h2=h2.id)
    yield {"app": app, "guest": guest, "lab": lab, "key": ssh_key, **ids}
    tear_down_guest_world(app, NETWORK, [lab.host(1).uri, lab.host(2).uri])


def _uptime(guest: Guest) -> float:
    return float(guest.ssh("cut -d' ' -f1 /proc/uptime"))


def _counter(guest: Guest) -> list[int]:
    return [int(line) for line in guest.ssh(f"cat {COUNTER}").split()]


@pytest.mark.timeout(1500)
def test_live_migration_of_the_writing_guest_keeps_its_boot_files_and_address(world):
    guest, app, lab = world["guest"], world["app"], world["lab"]
    # 64 MiB of its own in the overlay, flushed, and its checksum
    guest.ssh(f"head -c 64M /dev/urandom > {BLOB}; sync", timeout=300)
    digest = guest.ssh(f"sha256sum {BLOB}").split()[0]
    for writer in WRITERS:
        guest.ssh(f"setsid sh -c '{writer}' </dev/null >/dev/null 2>&1 &")
    wait_for(lambda: len(_counter(guest)) >= 10, 60, "the writer to start")
    boot, uptime_before = guest.boot_id(), _uptime(guest)

    with app.app_context():
        vm = db.session.get(VM, world["vm"])
        task = migration_service.migrate_vm(db.session.get(User, world["admin"]), vm,
                                            db.session.get(Host, world["h2"]))
        task_id = task.id
    with app.app_context():
        task_service.execute(task_id)
        task = db.session.get(Task, task_id)
        assert task.state == "succeeded", (task.error, task.message)
        assert says(task.result) == "mover-1 runs on h2 now (moved live from h1)."
        vm = db.session.get(VM, world["vm"])
        assert vm.host.name == "h2" and vm.status == VM.READY
        assert vm.live_state == "running" and vm.ip_address == world["ip"]

    there = Guest(lab.host(2), world["ip"], world["key"])   # from h2's network now
    wait_for(there.answers, 120, "SSH to the guest on h2")
    assert there.boot_id() == boot                      # the same boot: not restarted
    assert _uptime(there) > uptime_before
    own = there.ssh("ip -4 -o addr show scope global").split()
    assert any(word.startswith(world["ip"] + "/") for word in own), own
    counted = _counter(there)
    assert counted == list(range(1, len(counted) + 1))  # no gap, nothing lost or doubled
    wait_for(lambda: len(_counter(there)) > len(counted) + 10, 60,
             "the counter to go on after the move")
    there.ssh(f"touch {STOP}")
    wait_for(lambda: there.ssh("test -e /home/debian/stopped && echo y || echo n")
             .strip() == "y", 120, "the disk writer to finish its round")
    there.ssh("sync; echo 3 | sudo tee /proc/sys/vm/drop_caches >/dev/null")
    # read back from the target's disk (the page cache dropped)
    assert there.ssh(f"sha256sum {BLOB}").split()[0] == digest
    summed = there.ssh("cd /home/debian; sha256sum < during; cat during.sum").split()
    assert summed[0] == summed[2], summed   # the last round written whole
