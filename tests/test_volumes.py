"""The administrator's Volumes page and `manage.py volumes` (issue 14) on the test
driver: every volume of LouCloud's pool with whose it is, the orphans, and deleting an
orphan (never one that belongs to something or that a domain uses)."""
from __future__ import annotations

import pytest

from tests.support.vms import catalog, create, host_call, vms, volumes_in  # noqa: F401

ORPHAN = "stray.qcow2"


def make_volume(app, uri, name, pool="loucloud"):
    xml = (f"<volume><name>{name}</name><capacity unit='bytes'>1048576</capacity>"
           "<target><format type='qcow2'/></target></volume>")
    host_call(app, uri, lambda c: c.storagePoolLookupByName(pool).createXML(xml, 0))


@pytest.fixture
def world(app, as_admin, as_user, catalog, test_host):
    create(as_user, "box", catalog.id, start=False)
    [vm] = vms(app)
    as_user.post(f"/vms/{vm.id}/disks", {"size_gib": "1"})
    make_volume(app, test_host, ORPHAN)
    return vm


def test_the_page_lists_every_volume_with_its_owner(app, as_admin, world, test_host):
    page = as_admin.get("/volumes/").get_data(as_text=True)
    assert f'data-volume="{world.volume_name}" data-orphan="no"' in page
    assert "VM box of alice, disk vda" in page and "VM box of alice, disk vdb" in page
    assert f'data-volume="{ORPHAN}" data-orphan="yes"' in page
    assert "1 orphan among 3 volumes." in page
    assert "Delete the orphan volume stray.qcow2 from h1" in page


def test_delete_an_orphan(app, as_admin, world, test_host):
    with app.app_context():
        from loucloud.models import Host
        from loucloud.extensions import db
        host_id = db.session.execute(db.select(Host.id)).scalar()
    response = as_admin.post("/volumes/delete", {"host_id": str(host_id), "name": ORPHAN},
                             headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.get_json()["message"] == "Orphan volume stray.qcow2 deleted from h1."
    assert ORPHAN not in volumes_in(app, test_host)
    refused = as_admin.post("/volumes/delete", {"host_id": str(host_id),
                                                "name": world.volume_name},
                            headers={"Accept": "application/json"})
    assert refused.status_code == 409
    assert "is no orphan: it belongs to VM box of alice, disk vda" in \
        refused.get_json()["error"]
    assert world.volume_name in volumes_in(app, test_host)
    gone = as_admin.post("/volumes/delete", {"host_id": str(host_id), "name": "nope"},
                         headers={"Accept": "application/json"})
    assert gone.status_code == 404
    bad = as_admin.post("/volumes/delete", {"host_id": "x", "name": ORPHAN},
                        headers={"Accept": "application/json"})
    assert bad.status_code == 404


def test_a_file_a_domain_uses_is_not_deleted(app, as_admin, world, test_host):
    """A volume with no record, that a domain LouCloud does not know uses: refused."""
    from loucloud.virt import xml as vxml

    def define_user(conn):
        path = conn.storagePoolLookupByName("loucloud").storageVolLookupByName(ORPHAN).path()
        conn.defineXML("<domain type='test'><name>foreign</name><memory>65536</memory>"
                       "<os><type>hvm</type></os><devices>" + vxml.build_disk(path, "vda") +
                       "</devices></domain>")
    host_call(app, test_host, define_user)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["volumes", "delete-orphan", "h1", ORPHAN, "--yes"])
    assert result.exit_code == 1 and "in use by domain foreign" in result.output
    assert ORPHAN in volumes_in(app, test_host)


def test_the_command_line_lists_and_deletes_orphans(app, world, test_host):
    runner = app.test_cli_runner()
    listing = runner.invoke(args=["volumes", "list", "--orphans"])
    assert listing.exit_code == 0
    assert [line.split()[:2] for line in listing.output.splitlines()[1:]] == [["h1", ORPHAN]]
    everything = runner.invoke(args=["volumes", "list"]).output
    assert world.volume_name in everything and "ORPHAN" in everything
    result = runner.invoke(args=["volumes", "delete-orphan", "h1", ORPHAN, "--yes"])
    assert result.exit_code == 0 and "deleted from h1" in result.output
    assert runner.invoke(args=["volumes", "list", "--orphans"]).output.count("\n") == 1


def test_users_do_not_see_the_page(app, as_user, world):
    assert as_user.get("/volumes/").status_code == 403


def test_an_image_added_by_path_in_the_pool_is_no_orphan(app, as_admin, world, test_host):
    """`manage.py images build` leaves its image in LouCloud's pool and adds it by path
    (its copy on the host has no path of its own): the page says whose it is."""
    from loucloud.extensions import db
    from loucloud.models import Host, Image, ImageLocation
    make_volume(app, test_host, "image-built.qcow2")
    with app.app_context():
        path = host_call(app, test_host, lambda c: c.storagePoolLookupByName("loucloud")
                         .storageVolLookupByName("image-built.qcow2").path())
        image = Image(name="built", path=path, format="qcow2", virtual_size=1 << 20)
        image.locations.append(ImageLocation(present=True, host_id=db.session.execute(
            db.select(Host.id)).scalar()))
        db.session.add(image)
        db.session.commit()
    page = as_admin.get("/volumes/").get_data(as_text=True)
    assert 'data-volume="image-built.qcow2" data-orphan="no"' in page
    assert "image built" in page


def test_a_moving_vms_volumes_on_its_target_are_no_orphans(app, as_admin, world, test_host,
                                                           test_host2, admin):
    """Review finding 19: mid-move, the target already holds the VM's volumes; the page
    must not offer them for deletion while a migration or drain runs."""
    from loucloud.extensions import db
    from loucloud.models import Task, User
    from loucloud.services import hosts as host_service
    from loucloud.services import tasks as task_service
    from loucloud.services.hypervisors import hypervisor

    with app.app_context():
        h2 = host_service.add_host("h2", test_host2)
        hypervisor(h2).ensure_pool("loucloud")
    make_volume(app, test_host2, world.volume_name)
    page = as_admin.get("/volumes/").get_data(as_text=True)
    assert page.count(f'data-volume="{world.volume_name}" data-orphan="yes"') == 1
    with app.app_context():
        task_service.start("vm.migrate", db.session.get(User, admin.id), target_type="vm",
                           target_id=world.id, target_name=world.name,
                           args={"vm_id": world.id})
        assert db.session.execute(db.select(Task.state)).scalar() == "queued"
    page = as_admin.get("/volumes/").get_data(as_text=True)
    assert f'data-volume="{world.volume_name}" data-orphan="yes"' not in page
    assert "VM box of alice, disk vda (being moved)" in page
