"""Creating VMs on libvirt's test driver: the domain and its overlay disk, names, the
quota (also under concurrent creates, on SQLite and MariaDB), placement."""
from __future__ import annotations

import re
import threading

import pytest

from loucloud.extensions import db
from loucloud.models import Host, Template, User
from loucloud.services import settings as settings_service
from loucloud.services.vms import create as vm_create
from loucloud.virt import xml
from tests.conftest import Client
from tests.factories import make_catalog, make_user, make_vm
from tests.support.vms import (  # noqa: F401 (catalog: a fixture)
    catalog,
    create,
    domains_on,
    host_call,
    vms,
    volumes_in,
)


# -- create --------------------------------------------------------------------------
def test_create_starts_a_vm_on_an_overlay_disk(app, as_user, catalog, test_host):
    response = create(as_user, "web-1", catalog.id)
    assert response.status_code == 302, response.get_data(as_text=True)
    [vm] = vms(app)
    assert (vm.name, vm.status, vm.vcpus, vm.memory_mib, vm.disk_gib) == \
        ("web-1", "ready", 1, 512, 2)
    assert domains_on(app, test_host) == {vm.domain_name: "running"}
    assert vm.domain_name != vm.name and vm.domain_name.startswith("lc-")
    volume = xml.parse_volume(volumes_in(app, test_host)[vm.volume_name])
    assert volume.format == "qcow2" and volume.capacity == 2 * 1024 ** 3
    assert (volume.backing_path, volume.backing_format) == \
        ("/var/lib/images/base.qcow2", "qcow2")
    page = as_user.get(response.headers["Location"]).get_data(as_text=True)
    assert 'data-state="running"' in page
    assert re.search(r'<span class="vm-action" data-action="poweroff">', page)  # shown
    assert re.search(r'<span class="vm-action d-none" data-action="start">', page)  # hidden


def test_domain_xml_is_what_the_spec_says(app, as_user, catalog, test_host):
    create(as_user, "box", catalog.id)
    [vm] = vms(app)
    desc = xml.parse_domain(host_call(
        app, test_host, lambda conn: conn.lookupByUUIDString(vm.uuid).XMLDesc(0)))
    assert desc.title == "box" and desc.uuid == vm.uuid
    assert desc.domain_type == "test"  # the host offers neither kvm nor qemu
    assert desc.clock == "utc"
    assert desc.vnc_listen == "127.0.0.1"
    assert desc.networks == ("default",) and desc.macs == (vm.mac,)
    assert desc.loucloud_vm == vm.id


def test_windows_images_get_a_localtime_clock(app, as_admin, test_host):
    with app.app_context():
        from loucloud.services import images, hosts, templates as template_service
        hosts.add_host("h1", test_host)
        image = images.add_image("win", "/var/lib/images/base.raw", "windows")
        template = template_service.create_template("w", template_service.Sizes(1, 512, 2), image)
        admin_id = db.session.execute(db.select(User.id).filter_by(username="admin")).scalar()
        vm = make_vm(admin_id, "win-1", template.id)
    desc = xml.parse_domain(host_call(
        app, test_host, lambda conn: conn.lookupByUUIDString(vm.uuid).XMLDesc(0)))
    assert desc.clock == "localtime"


def test_left_off_when_asked(app, as_user, catalog, test_host):
    create(as_user, "quiet", catalog.id, start=False)
    [vm] = vms(app)
    assert domains_on(app, test_host) == {vm.domain_name: "shut off"}


def test_placement_only_picks_hosts_where_the_network_is_active(app, as_user, catalog,
                                                                test_host):
    with app.app_context():
        settings_service.update_settings({"network": "nowhere"})
    response = create(as_user, "lonely", catalog.id)
    assert response.status_code == 503
    assert "there is no network nowhere" in response.get_data(as_text=True)
    assert vms(app) == [] and domains_on(app, test_host) == {}


def test_a_host_chosen_without_the_network_gives_no_nic_and_the_page_says_why(
        app, as_admin, catalog, test_host):
    with app.app_context():
        settings_service.update_settings({"network": "nowhere"})
        host_id = db.session.execute(db.select(Host.id)).scalar()
    response = create(as_admin, "lonely", catalog.id, host_id=host_id)
    [vm] = vms(app)
    assert vm.mac is None and vm.nic_kind is None
    page = as_admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "no network card" in page and "there is no network nowhere on h1" in page


@pytest.mark.parametrize("name", ["a b", "<x>", "a</name><devices>", "it's", 'q"q',
                                  "a&b", "", "x" * 65, "é", "../etc"])
def test_bad_names_are_form_errors_and_reach_no_host(app, as_user, catalog, test_host, name):
    response = create(as_user, name, catalog.id)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "is-invalid" in page
    assert vms(app) == [] and domains_on(app, test_host) == {}


def test_names_are_unique_per_owner(app, as_user, catalog, other_user):
    assert create(as_user, "same", catalog.id).status_code == 302
    response = create(as_user, "same", catalog.id)
    assert response.status_code == 400
    assert "already have a VM named same" in response.get_data(as_text=True)
    bob = Client(app)
    bob.login("bob")
    assert create(bob, "same", catalog.id).status_code == 302
    assert len(vms(app)) == 2


# -- quota ---------------------------------------------------------------------------
@pytest.mark.parametrize("quota,message", [
    ({"max_vms": 1}, "VMs 1 in use + 1 would exceed 1"),
    ({"max_vcpus": 1}, "vCPUs 1 in use + 1 would exceed 1"),
    ({"max_memory_mib": 1000}, "memory (MiB) 512 in use + 512 would exceed 1000"),
    ({"max_disk_gib": 3}, "disk (GiB) 2 in use + 2 would exceed 3"),
])
def test_quota_is_enforced(app, catalog, test_host, quota, message):
    with app.app_context():
        make_user("carol", **quota)
    carol = Client(app)
    carol.login("carol")
    assert create(carol, "one", catalog.id).status_code == 302
    response = create(carol, "two", catalog.id)
    assert response.status_code == 409
    assert message in response.get_data(as_text=True)
    assert len(vms(app)) == 1 and len(domains_on(app, test_host)) == 1


def test_twenty_concurrent_creates_never_exceed_the_quota(any_app, test_host):
    app = any_app
    with app.app_context():
        catalog = make_catalog(("h1", test_host))
        carol = make_user("carol", max_vms=5)
    outcomes = []
    barrier = threading.Barrier(20)

    def one(i):
        with app.app_context():
            owner = db.session.get(User, carol.id)
            template = db.session.get(Template, catalog.id)
            db.session.commit()  # give the connection back while waiting at the barrier
            barrier.wait()
            try:
                vm_create.create_vm(owner, f"vm-{i}", template)
                outcomes.append("ok")
            except vm_create.QuotaExceeded:
                outcomes.append("quota")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] * 5 + ["quota"] * 15
    assert len(vms(app)) == 5
    assert len(domains_on(app, test_host)) == 5
    assert len(volumes_in(app, test_host)) == 5


# -- placement -----------------------------------------------------------------------
def test_placement_prefers_free_memory_and_respects_the_switch(app, test_host, test_host2):
    with app.app_context():
        template = make_catalog(("h1", test_host), ("h2", test_host2))
        owner = make_user("carol")
        first = make_vm(owner.id, "a", template.id)
        h2 = db.session.execute(db.select(Host).filter_by(name="h2")).scalar()
        assert first.host_id == h2.id  # 16 GiB free against 8 GiB
        h2.accepts_vms = False
        db.session.commit()
        second = make_vm(owner.id, "b", template.id)
        assert second.host_id != h2.id
        # The administrator may still choose it.
        third = make_vm(owner.id, "c", template.id, host_id=h2.id)
        assert third.host_id == h2.id


def test_no_host_with_the_image(app, as_user, catalog):
    with app.app_context():
        for host in db.session.execute(db.select(Host)).scalars():
            host.accepts_vms = False
        db.session.commit()
    response = create(as_user, "nowhere", catalog.id)
    assert response.status_code == 409
    assert "No host accepting new VMs holds the image" in response.get_data(as_text=True)
    assert vms(app) == []
