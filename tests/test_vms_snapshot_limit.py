"""The snapshot limit holds when two creates cross (issue 14, review finding 15): the
limit and the name are checked again once the VM is marked busy, so a create that
passed its first check while another one was finishing is refused, and the VM keeps
no more snapshots than Settings allow (on the host and in LouCloud's list)."""
from __future__ import annotations

import threading

from loucloud.extensions import db
from loucloud.models import VM
from loucloud.services import settings as settings_service
from loucloud.services.vms import snapshots
from loucloud.services import Conflict
from tests.support.vms import (  # noqa: F401 (catalog: a fixture)
    catalog,
    create,
    host_call,
    vms,
)


def _other_request(app, vm_id: int, name: str) -> None:
    """Another web process's create, run to its end (its own session)."""
    def run():
        with app.app_context():
            snapshots.create_snapshot(db.session.get(VM, vm_id), name)
            db.session.remove()
    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


def test_a_create_that_crossed_another_is_refused_at_the_limit(app, as_user, catalog,
                                                               test_host):
    create(as_user, "box", catalog.id)
    [vm] = vms(app)
    with app.app_context():
        settings_service.update_settings({"snapshots_per_vm": 1})
        mine = db.session.get(VM, vm.id)
        assert list(mine.snapshots) == []      # this request's first check: room for one
        _other_request(app, vm.id, "theirs")   # meanwhile another create takes it
        try:
            snapshots.create_snapshot(mine, "mine")
        except Conflict as exc:
            refusal = str(exc)
        else:
            refusal = None
        assert refusal == ("box has 1 snapshots, the most a VM may keep (1): delete one "
                           "first.")
        assert db.session.get(VM, vm.id).status == VM.READY
    names = host_call(app, test_host, lambda c: [
        s.getName() for s in c.lookupByUUIDString(vm.uuid).listAllSnapshots(0)])
    assert names == ["theirs"]
    with app.app_context():
        assert [s.name for s in db.session.get(VM, vm.id).snapshots] == ["theirs"]
