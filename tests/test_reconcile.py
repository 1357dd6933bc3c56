"""Reconciliation: stuck transitional states are cleared after the bound, and what a
failed create left on a dead host is removed once the host answers."""
from __future__ import annotations

import re
from datetime import timedelta

from loucloud.extensions import db
from loucloud.models import VM, Leftover, Host, utcnow
from loucloud.services import leftovers
from loucloud.services import settings as settings_service
from loucloud.services.hypervisors import pool
from tests.factories import make_catalog, make_vm


def _state(client, vm_id):
    return client.get(f"/vms/{vm_id}.json").get_json()


def _set_status(app, vm_id, status, age_seconds):
    with app.app_context():
        vm = db.session.get(VM, vm_id)
        vm.status, vm.status_since = status, utcnow() - timedelta(seconds=age_seconds)
        db.session.commit()


def test_a_stuck_action_is_cleared_after_the_bound(app, as_user, user, test_host):
    with app.app_context():
        template = make_catalog(("h1", test_host))
        vm = make_vm(user.id, "stuck", template.id)
        settings_service.update_settings({"stuck_after_seconds": 60})
    _set_status(app, vm.id, "starting", 30)
    assert _state(as_user, vm.id)["state"] == "starting…"  # within the bound: kept
    assert as_user.post(f"/vms/{vm.id}/poweroff", headers={"Accept": "application/json"}
                        ).status_code == 409
    _set_status(app, vm.id, "starting", 61)
    as_user.get("/")  # the list reconciles
    assert _state(as_user, vm.id)["state"] == "running"
    assert as_user.post(f"/vms/{vm.id}/poweroff", headers={"Accept": "application/json"}
                        ).status_code == 200


def test_an_interrupted_create_becomes_an_error_the_user_can_delete(app, as_user, user,
                                                                   test_host):
    with app.app_context():
        template = make_catalog(("h1", test_host))
        host = db.session.execute(db.select(Host)).scalar_one()
        db.session.add(VM(name="half", owner_id=user.id, host_id=host.id,
                          template_id=template.id, image_id=template.image_id,
                          domain_name="lc-half", uuid="22222222-2222-2222-2222-222222222222",
                          vcpus=1, memory_mib=512, disk_gib=2, volume_name="lc-half.qcow2",
                          status=VM.CREATING, status_since=utcnow() - timedelta(hours=1)))
        db.session.commit()
        vm_id = db.session.execute(db.select(VM.id).filter_by(name="half")).scalar()
    page = as_user.get("/").get_data(as_text=True)
    assert "creation was interrupted" in page.lower()
    assert as_user.post(f"/vms/{vm_id}/delete").status_code == 302
    with app.app_context():
        assert db.session.get(VM, vm_id) is None  # and the quota is free again


def test_leftovers_are_removed_when_the_host_answers(app, as_admin, test_host):
    with app.app_context():
        make_catalog(("h1", test_host))
        host = db.session.execute(db.select(Host)).scalar_one()
        # What a create left when its host died: a volume in the pool, a defined domain.
        def leave(conn):
            p = conn.storagePoolLookupByName("images")
            p.createXML("<volume><name>orphan.qcow2</name><capacity>1024</capacity>"
                        "<target><format type='qcow2'/></target></volume>", 0)
            return conn.defineXML("<domain type='test'><name>lc-orphan</name>"
                                  "<memory>1024</memory><os><type>hvm</type></os></domain>"
                                  ).UUIDString()
        uuid = pool().call(test_host, leave, timeout=5)
        leftovers.remember(host, Leftover.DOMAIN, uuid, "", "host died")
        leftovers.remember(host, Leftover.VOLUME, "orphan.qcow2", "images", "host died")
        host_id = host.id
    page = as_admin.get(f"/hosts/{host_id}").get_data(as_text=True)
    # The page asked the host, the host answered: both are gone already.
    with app.app_context():
        assert leftovers.pending() == []
        names = pool().call(test_host, lambda c: (
            [d.name() for d in c.listAllDomains(0)],
            c.storagePoolLookupByName("images").listVolumes()), timeout=5)
    assert "lc-orphan" not in names[0] and "orphan.qcow2" not in names[1]
    assert 'id="leftovers"' not in page or "orphan" not in page


def test_a_state_filter_lists_a_stuck_vm_by_what_it_is_now(app, as_user, user, test_host):
    """The state filter reads only a few columns of every VM; a VM stuck beyond the bound
    is settled first, so it is listed under its real state, not its stale one."""
    with app.app_context():
        template = make_catalog(("h1", test_host))
        stuck = make_vm(user.id, "stuck-one", template.id)
        make_vm(user.id, "fine-one", template.id)
        settings_service.update_settings({"stuck_after_seconds": 60})
    _set_status(app, stuck.id, "starting", 61)

    def names(query):
        page = as_user.get(f"/?{query}").get_data(as_text=True)
        return set(re.findall(r'href="/vms/\d+">([^<]+)</a>', page))

    assert names("state=shut+off") == set()
    assert names("state=running") == {"stuck-one", "fine-one"}
    assert _state(as_user, stuck.id)["status"] == "ready"
