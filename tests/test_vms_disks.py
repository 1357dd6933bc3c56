"""A VM's disks on libvirt's test driver (issue 14): add a blank data disk (volume in
LouCloud's pool, the next free target in the stopped VM's definition), detach, delete,
grow; the page lists them with their allocation; quota counts them; every refusal
(bad sizes, shrinking, unknown disk, the system disk, over quota, a full pool, a
hot-plug the host refuses, another user's VM) says why and leaves nothing behind.
The test driver cannot hot-plug or resize volumes: the live paths are in
tests/system/test_guest_resize.py."""
from __future__ import annotations

import libvirt
import pytest

from loucloud.extensions import db
from loucloud.models import VM, Disk, User
from loucloud.services import users as user_service
from loucloud.virt import xml
from tests.conftest import Client
from tests.support.vms import (  # noqa: F401 (catalog: a fixture)
    act,
    catalog,
    create,
    host_call,
    vms,
    volumes_in,
)

CONFIG = libvirt.VIR_DOMAIN_XML_INACTIVE
JSON = {"Accept": "application/json"}


def targets(app, uri, uuid, flags=CONFIG) -> dict[str, str]:
    return {d.target: d.path for d in xml.parse_disks(host_call(
        app, uri, lambda c: c.lookupByUUIDString(uuid).XMLDesc(flags)))}


def disk_rows(app) -> list[tuple[str, int, bool, bool]]:
    with app.app_context():
        return [(d.target, d.size_gib, d.system, d.attached) for d in db.session.execute(
            db.select(Disk).order_by(Disk.target)).scalars()]


def disk_gib(app, username="alice") -> int:
    with app.app_context():
        user = db.session.execute(db.select(User).filter_by(username=username)).scalar_one()
        return user_service.quota_usage(user).used.disk_gib


def post(client, vm_id, what, **form):
    url = f"/vms/{vm_id}/disks" + (f"/{what}" if what != "add" else "")
    return client.post(url, form, headers=JSON)


@pytest.fixture
def box(app, as_user, catalog):
    """alice's stopped VM "box" (system disk vda, 2 GiB)."""
    create(as_user, "box", catalog.id, start=False)
    return vms(app)[0]


def test_add_a_disk_to_a_stopped_vm(app, as_user, box, test_host):
    response = post(as_user, box.id, "add", size_gib="5")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["message"] == \
        "A 5 GiB disk vdb was added to box; the VM sees it as /dev/vdb at its next start."
    places = targets(app, test_host, box.uuid)
    assert list(places) == ["vda", "vdb"]
    volume = [v for v in volumes_in(app, test_host) if v.startswith(f"lc-{box.uuid}-vdb")]
    assert len(volume) == 1
    desc = xml.parse_volume(volumes_in(app, test_host)[volume[0]])
    assert (desc.format, desc.capacity, desc.backing_path) == ("qcow2", 5 << 30, None)
    assert places["vdb"] == desc.path
    assert disk_rows(app) == [("vda", 2, True, True), ("vdb", 5, False, True)]
    assert disk_gib(app) == 7
    page = as_user.get(f"/vms/{box.id}").get_data(as_text=True)
    assert 'data-disk="vdb"' in page and "5 GiB" in page
    hardware = as_user.get(f"/vms/{box.id}/hardware.json").get_json()
    assert hardware["disks"]["vdb"] == {"capacity_gib": "5.00 GiB",
                                        "allocation_gib": "0.00 GiB",
                                        "capacity_bytes": 5 << 30, "allocation_bytes": 0,
                                        "found": True, "held": False}
    assert hardware["disks"]["vda"]["capacity_gib"] == "2.00 GiB"
    # the next one takes the next target
    assert post(as_user, box.id, "add", size_gib="1").status_code == 200
    assert list(targets(app, test_host, box.uuid)) == ["vda", "vdb", "vdc"]


def test_the_vm_keeps_its_vnc_password_when_its_definition_changes(app, as_user, box,
                                                                     test_host):
    def password(conn):
        flags = CONFIG | libvirt.VIR_DOMAIN_XML_SECURE
        return 'passwd="' in conn.lookupByUUIDString(box.uuid).XMLDesc(flags) or \
            "passwd='" in conn.lookupByUUIDString(box.uuid).XMLDesc(flags)
    assert host_call(app, test_host, password)
    post(as_user, box.id, "add", size_gib="1")
    post(as_user, box.id, "detach", disk="vdb")
    assert host_call(app, test_host, password)


def test_detach_then_delete(app, as_user, box, test_host):
    post(as_user, box.id, "add", size_gib="3")
    response = post(as_user, box.id, "detach", disk="vdb")
    assert response.status_code == 200
    assert "vdb was detached from box" in response.get_json()["message"]
    assert list(targets(app, test_host, box.uuid)) == ["vda"]
    assert disk_rows(app)[1] == ("vdb", 3, False, False)
    assert disk_gib(app) == 5   # a detached disk still counts
    again = post(as_user, box.id, "detach", disk="vdb")
    assert again.status_code == 409 and "detached already" in again.get_json()["error"]
    response = post(as_user, box.id, "delete", disk="vdb")
    assert response.status_code == 200
    assert response.get_json()["message"] == \
        "Disk vdb of box was deleted; its 3 GiB are free in the quota."
    assert disk_rows(app) == [("vda", 2, True, True)]
    assert [v for v in volumes_in(app, test_host) if "-vdb-" in v] == []
    assert disk_gib(app) == 2


def test_delete_detaches_first(app, as_user, box, test_host):
    post(as_user, box.id, "add", size_gib="1")
    assert post(as_user, box.id, "delete", disk="vdb").status_code == 200
    assert list(targets(app, test_host, box.uuid)) == ["vda"]
    assert [v for v in volumes_in(app, test_host) if "-vdb-" in v] == []


def test_the_system_disk_stays(app, as_user, box, test_host):
    for what in ("detach", "delete"):
        response = post(as_user, box.id, what, disk="vda")
        assert response.status_code == 409
        assert "system disk" in response.get_json()["error"]
    assert list(targets(app, test_host, box.uuid)) == ["vda"]
    assert box.volume_name in volumes_in(app, test_host)


@pytest.mark.parametrize("what", ["detach", "delete", "grow"])
def test_an_unknown_disk_is_404(app, as_user, box, what):
    response = post(as_user, box.id, what, disk="vdq", size_gib="9")
    assert response.status_code == 404 and "box has no disk 'vdq'" in \
        response.get_json()["error"]


@pytest.mark.parametrize("size, text", [
    ("0", "from 1 to 65536"), ("-3", "from 1 to 65536"), ("65537", "from 1 to 65536"),
    ("1" * 30, "from 1 to 65536"), ("lots", "whole number"), ("", "whole number"),
    ("2.5", "whole number")])
def test_bad_sizes_are_refused(app, as_user, box, test_host, size, text):
    before = volumes_in(app, test_host)
    for what, form in (("add", {"size_gib": size}), ("grow", {"disk": "vda",
                                                             "size_gib": size})):
        response = post(as_user, box.id, what, **form)
        assert response.status_code == 400 and text in response.get_json()["error"]
    assert volumes_in(app, test_host) == before
    assert disk_rows(app) == [("vda", 2, True, True)]


def test_shrinking_is_refused(app, as_user, box):
    for size, text in (("1", "a disk cannot shrink"), ("2", "has 2 GiB already")):
        response = post(as_user, box.id, "grow", disk="vda", size_gib=size)
        assert response.status_code == 400 and text in response.get_json()["error"]
    assert disk_rows(app) == [("vda", 2, True, True)]


def test_growing_where_the_host_cannot_says_so_and_keeps_the_size(app, as_user, box,
                                                                   test_host):
    """The test driver cannot resize a volume: the refusal is the host's, the disk and
    the quota stay as they were (tests/system grows disks for real)."""
    response = post(as_user, box.id, "grow", disk="vda", size_gib="4")
    assert response.status_code == 400
    assert "Growing vda of box failed on h1" in response.get_json()["error"]
    assert disk_rows(app) == [("vda", 2, True, True)] and vms(app)[0].disk_gib == 2
    assert disk_gib(app) == 2 and vms(app)[0].status == "ready"


def test_over_quota_is_refused_and_leaves_nothing(app, as_user, box, test_host):
    """alice may have 100 GiB (factories.make_user); vda holds 2."""
    before = volumes_in(app, test_host)
    response = post(as_user, box.id, "add", size_gib="99")
    assert response.status_code == 409
    assert "Over quota: disk (GiB) 2 in use + 99 would exceed 100" in \
        response.get_json()["error"]
    response = post(as_user, box.id, "grow", disk="vda", size_gib="101")
    assert response.status_code == 409
    assert volumes_in(app, test_host) == before
    assert disk_rows(app) == [("vda", 2, True, True)] and vms(app)[0].status == "ready"


def test_a_busy_vm_is_refused_and_the_volume_made_meanwhile_is_deleted(app, as_user, box,
                                                                     test_host):
    """The host makes the volume while the rows are written: a VM another action holds
    refuses, and that volume goes again."""
    before = volumes_in(app, test_host)
    with app.app_context():
        db.session.get(VM, box.id).status = "starting"
        db.session.commit()
    response = post(as_user, box.id, "add", size_gib="1")
    assert response.status_code == 409
    assert "box is busy" in response.get_json()["error"]
    assert volumes_in(app, test_host) == before
    assert disk_rows(app) == [("vda", 2, True, True)] and vms(app)[0].status == "starting"
    assert disk_gib(app) == 2


def test_a_full_pool_is_refused_and_leaves_nothing(app, as_admin, catalog, test_host):
    """The test driver's pool has 100 GiB free; the admin's quota would allow 300 GiB,
    so the host's room is what refuses (looked at as the volume is made, beside the
    quota's check)."""
    create(as_admin, "big", catalog.id, start=False)
    [vm] = vms(app)
    with app.app_context():
        db.session.get(User, vm.owner_id).max_disk_gib = 300
        db.session.commit()
    before = volumes_in(app, test_host)
    response = post(as_admin, vm.id, "add", size_gib="200")
    assert response.status_code == 409
    assert "LouCloud's storage pool on h1 has 100.0 GiB free, not enough for 200 GiB " \
           "more" in response.get_json()["error"]
    assert volumes_in(app, test_host) == before
    assert disk_rows(app) == [("vda", 2, True, True)] and vms(app)[0].status == "ready"


def test_a_vm_stopped_behind_loucloud_gets_the_disk_in_its_definition(app, as_user, catalog,
                                                                      test_host):
    """LouCloud still believes the VM runs (its domain was destroyed on the host, the
    store not told): the hot-plug is tried and refused, and the disk goes into the
    definition, said as such."""
    create(as_user, "gone", catalog.id)
    [vm] = vms(app)
    host_call(app, test_host, lambda c: c.lookupByUUIDString(vm.uuid).destroy())
    assert vms(app)[0].live_state == "running"
    response = post(as_user, vm.id, "add", size_gib="1")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["message"].endswith("the VM sees it as /dev/vdb at its "
                                                   "next start.")
    assert list(targets(app, test_host, vm.uuid)) == ["vda", "vdb"]
    assert disk_rows(app) == [("vda", 2, True, True), ("vdb", 1, False, True)]


def test_a_hot_plug_the_host_refuses_leaves_nothing(app, as_user, catalog, test_host):
    """The test driver refuses to hot-plug into a running domain, as a guest or a
    hypervisor may: the new volume is deleted again, no row, the quota as before."""
    create(as_user, "live", catalog.id)
    [vm] = vms(app)
    before = volumes_in(app, test_host)
    response = post(as_user, vm.id, "add", size_gib="1")
    assert response.status_code == 400
    assert "Adding a 1 GiB disk to live failed on h1" in response.get_json()["error"]
    assert volumes_in(app, test_host) == before
    assert disk_rows(app) == [("vda", 2, True, True)]
    assert disk_gib(app) == 2 and vms(app)[0].status == "ready"
    assert list(targets(app, test_host, vm.uuid, 0)) == ["vda"]


def test_a_busy_vm_is_refused(app, as_user, box):
    with app.app_context():
        db.session.get(VM, box.id).status = "stopping"
        db.session.commit()
    response = post(as_user, box.id, "add", size_gib="1")
    assert response.status_code == 409 and "busy" in response.get_json()["error"]
    assert disk_rows(app) == [("vda", 2, True, True)]


def test_another_users_vm_is_404(app, as_user, box, other_user, test_host):
    post(as_user, box.id, "add", size_gib="1")
    bob = Client(app)
    bob.login("bob")
    for what, form in (("add", {"size_gib": "1"}), ("detach", {"disk": "vdb"}),
                       ("delete", {"disk": "vdb"}), ("grow", {"disk": "vdb",
                                                              "size_gib": "9"})):
        assert post(bob, box.id, what, **form).status_code == 404
    assert disk_rows(app) == [("vda", 2, True, True), ("vdb", 1, False, True)]


def test_the_page_offers_the_actions(app, as_user, box):
    post(as_user, box.id, "add", size_gib="1")
    page = as_user.get(f"/vms/{box.id}").get_data(as_text=True)
    assert f'action="/vms/{box.id}/disks"' in page
    assert f'action="/vms/{box.id}/disks/grow"' in page
    assert page.count(f'action="/vms/{box.id}/disks/delete"') == 1   # vdb, not vda
    assert "Delete vdb of box (1 GiB) and everything on it for good?" in page
    assert f'action="/vms/{box.id}/resize"' in page


def test_disks_through_the_command_line(app, box, test_host):
    runner = app.test_cli_runner()

    def run(*args):
        return runner.invoke(args=["vms", *args])

    result = run("disk-add", "box", "--owner", "alice", "--size", "2")
    assert result.exit_code == 0 and "A 2 GiB disk vdb was added to box" in result.output
    listing = run("disks", "box", "--owner", "alice")
    assert listing.exit_code == 0
    assert [line.split()[:2] for line in listing.output.splitlines()[1:]] == \
        [["vda", "2"], ["vdb", "2"]]
    refused = run("disk-grow", "box", "vdb", "--owner", "alice", "--size", "1")
    assert refused.exit_code == 1 and "cannot shrink" in refused.output
    assert run("disk-detach", "box", "vda", "--owner", "alice").exit_code == 1
    assert run("disk-detach", "box", "vdb", "--owner", "alice").exit_code == 0
    assert run("disk-delete", "box", "vdb", "--owner", "alice", "--yes").exit_code == 0
    assert disk_rows(app) == [("vda", 2, True, True)]
    assert run("disk-delete", "box", "vdb", "--owner", "alice", "--yes").exit_code == 1


def test_a_target_taken_behind_loucloud_s_back_is_refused_and_leaves_nothing(
        app, as_user, box, test_host):
    def add_foreign(conn):
        dom = conn.lookupByUUIDString(box.uuid)
        conn.defineXML(xml.with_disk(dom.XMLDesc(CONFIG | libvirt.VIR_DOMAIN_XML_SECURE),
                                     "/srv/foreign.qcow2", "vdb"))
    host_call(app, test_host, add_foreign)
    before = volumes_in(app, test_host)
    response = post(as_user, box.id, "add", size_gib="1")
    assert response.status_code == 409
    assert "the VM already has a disk vdb" in response.get_json()["error"]
    assert volumes_in(app, test_host) == before
    assert disk_rows(app) == [("vda", 2, True, True)] and disk_gib(app) == 2


# -- attach again (a detached data disk) ---------------------------------------------
def test_a_detached_disk_is_attached_again(app, as_user, box, test_host):
    post(as_user, box.id, "add", size_gib="2")
    post(as_user, box.id, "detach", disk="vdb")
    page = as_user.get(f"/vms/{box.id}").get_data(as_text=True)
    assert page.count(f'action="/vms/{box.id}/disks/attach"') == 1    # vdb, detached
    response = post(as_user, box.id, "attach", disk="vdb")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["message"] == \
        "vdb was attached to box again; the VM sees it as /dev/vdb at its next start."
    places = targets(app, test_host, box.uuid)
    assert list(places) == ["vda", "vdb"] and "-vdb-" in places["vdb"]
    assert disk_rows(app)[1] == ("vdb", 2, False, True)
    assert disk_gib(app) == 4 and vms(app)[0].status == "ready"
    page = as_user.get(f"/vms/{box.id}").get_data(as_text=True)
    assert f'action="/vms/{box.id}/disks/attach"' not in page
    again = post(as_user, box.id, "attach", disk="vdb")
    assert again.status_code == 409 and "attached already" in again.get_json()["error"]
    system = post(as_user, box.id, "attach", disk="vda")
    assert system.status_code == 409 and "always attached" in system.get_json()["error"]
    assert post(as_user, box.id, "attach", disk="vdq").status_code == 404


def test_a_disk_whose_target_was_taken_meanwhile_gets_the_next_free_one(
        app, as_user, box, test_host):
    """vdb was detached; a disk outside LouCloud took vdb in the definition; LouCloud's
    own vdc holds the next one: attached again, it becomes vdd."""
    post(as_user, box.id, "add", size_gib="1")
    post(as_user, box.id, "add", size_gib="1")
    post(as_user, box.id, "detach", disk="vdb")

    def add_foreign(conn):
        dom = conn.lookupByUUIDString(box.uuid)
        conn.defineXML(xml.with_disk(dom.XMLDesc(CONFIG | libvirt.VIR_DOMAIN_XML_SECURE),
                                     "/srv/foreign.qcow2", "vdb"))
    host_call(app, test_host, add_foreign)
    response = post(as_user, box.id, "attach", disk="vdb")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["message"] == "vdb was attached to box again as vdd (vdb " \
        "is taken); the VM sees it as /dev/vdd at its next start."
    places = targets(app, test_host, box.uuid)
    assert places["vdb"] == "/srv/foreign.qcow2" and "-vdb-" in places["vdd"]
    assert [(t, a) for t, _s, _sys, a in disk_rows(app)] == \
        [("vda", True), ("vdc", True), ("vdd", True)]


def test_a_disk_whose_volume_is_gone_is_not_attached(app, as_user, box, test_host):
    post(as_user, box.id, "add", size_gib="1")
    post(as_user, box.id, "detach", disk="vdb")
    [name] = [v for v in volumes_in(app, test_host) if "-vdb-" in v]
    host_call(app, test_host, lambda c: c.storagePoolLookupByName("loucloud")
              .storageVolLookupByName(name).delete(0))
    response = post(as_user, box.id, "attach", disk="vdb")
    assert response.status_code == 409
    assert f"The volume of vdb ({name}) is missing on h1" in response.get_json()["error"]
    assert list(targets(app, test_host, box.uuid)) == ["vda"]
    assert disk_rows(app)[1][3] is False and vms(app)[0].status == "ready"


def test_attach_through_the_command_line(app, box, test_host):
    runner = app.test_cli_runner()

    def run(*args):
        return runner.invoke(args=["vms", *args])

    run("disk-add", "box", "--owner", "alice", "--size", "1")
    run("disk-detach", "box", "vdb", "--owner", "alice")
    result = run("disk-attach", "box", "vdb", "--owner", "alice")
    assert result.exit_code == 0 and "vdb was attached to box again" in result.output
    refused = run("disk-attach", "box", "vdb", "--owner", "alice")
    assert refused.exit_code == 1 and "attached already" in refused.output
    assert list(targets(app, test_host, box.uuid)) == ["vda", "vdb"]


# -- a detached disk the running guest has not let go of ------------------------------
def _held_disk(app, as_user, catalog, test_host):
    """alice's running VM "held" whose vdb is marked detached and out of its definition
    but still in the running domain: what a live detach leaves when the guest does not
    let go (the test driver cannot detach live, so the host's side is made by hand)."""
    create(as_user, "held", catalog.id, start=False)
    [vm] = vms(app)
    post(as_user, vm.id, "add", size_gib="1")
    host_call(app, test_host, lambda c: c.lookupByUUIDString(vm.uuid).create())

    def drop_from_definition(conn):
        dom = conn.lookupByUUIDString(vm.uuid)
        text, _found = xml.without_disk(dom.XMLDesc(CONFIG | libvirt.VIR_DOMAIN_XML_SECURE),
                                        "vdb")
        conn.defineXML(text)
    host_call(app, test_host, drop_from_definition)
    with app.app_context():
        db.session.execute(db.update(Disk).where(Disk.target == "vdb").values(attached=False))
        db.session.commit()
    assert "vdb" in targets(app, test_host, vm.uuid, 0)
    assert "vdb" not in targets(app, test_host, vm.uuid)
    return vm


def test_a_disk_the_guest_still_holds_is_not_deleted(app, as_user, catalog, test_host):
    vm = _held_disk(app, as_user, catalog, test_host)
    hardware = as_user.get(f"/vms/{vm.id}/hardware.json").get_json()
    assert hardware["disks"]["vdb"]["held"] is True
    assert hardware["disks"]["vda"]["held"] is False
    response = post(as_user, vm.id, "delete", disk="vdb")
    assert response.status_code == 409
    assert "The guest of held has not let go of vdb yet" in response.get_json()["error"]
    assert "delete it once the guest has let go of it" in response.get_json()["error"]
    assert [v for v in volumes_in(app, test_host) if "-vdb-" in v] != []
    assert disk_rows(app)[1] == ("vdb", 1, False, False) and disk_gib(app) == 3


def test_a_disk_the_guest_still_holds_is_attached_again_into_the_definition(
        app, as_user, catalog, test_host):
    vm = _held_disk(app, as_user, catalog, test_host)
    response = post(as_user, vm.id, "attach", disk="vdb")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["message"] == "vdb was still plugged into the running " \
        "guest of held; it is attached again (back in its definition)."
    assert "vdb" in targets(app, test_host, vm.uuid)
    assert "vdb" in targets(app, test_host, vm.uuid, 0)
    assert disk_rows(app)[1] == ("vdb", 1, False, True)


def test_a_refused_detach_leaves_a_vm_in_error_with_its_error(app, as_user, box, test_host):
    """The host refuses (the test driver cannot unplug from a running domain): the VM is
    put back as it was, its earlier error kept (review finding 13)."""
    assert post(as_user, box.id, "add", size_gib="1").status_code == 200
    act(as_user, box.id, "start")
    with app.app_context():
        vm = db.session.get(VM, box.id)
        vm.status, vm.last_error = VM.ERROR, "Rebuild did not finish: h1 went away"
        db.session.commit()
    for verb in ("disks/detach", "disks/delete"):
        response = post(as_user, box.id, verb.split("/")[1], disk="vdb")
        assert 400 <= response.status_code < 500, response.get_data(as_text=True)
        with app.app_context():
            vm = db.session.get(VM, box.id)
            assert (vm.status, vm.last_error) == \
                (VM.ERROR, "Rebuild did not finish: h1 went away"), verb
