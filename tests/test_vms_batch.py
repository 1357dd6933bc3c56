"""Batch create, batch actions and expiry (issue 16, item 3) on libvirt's test driver:
one VM per user named by a pattern, spread over the hosts by their free memory (the
most free first, each VM placed taking its memory off), each owner's quota checked,
partial failures listed with their reasons and the successes kept; start / shut down /
delete for a batch's VMs as one task; an expired VM shut off, kept, and not started
again until its expiry is moved on."""
from __future__ import annotations

from datetime import timedelta

import pytest

from loucloud.extensions import db
from loucloud.models import VM, Batch, Host, Task, Template, User, utcnow
from loucloud.services import Conflict, FieldError
from loucloud.services import tasklist
from loucloud.services import tasks as task_service
from loucloud.services.vms import batch as batch_service
from loucloud.services.vms import batch_actions, expiry, lifecycle
from tests.factories import make_catalog, make_user


@pytest.fixture
def pool(app, test_host, test_host2):
    """h1 (8 GiB) and h2 (16 GiB) both holding the image; a template of 4 GiB."""
    with app.app_context():
        return make_catalog(("h1", test_host), ("h2", test_host2), memory_mib=4096)


@pytest.fixture
def people(app, admin):
    with app.app_context():
        return [make_user(name, max_memory_mib=8192) for name in
                ("ann", "ben", "cai", "dan", "eva")]


def _users(names):
    return [db.session.execute(db.select(User).filter_by(username=n)).scalar_one()
            for n in names]


def _run(app, pattern, names, *, per_user=1, expires_at=None) -> Batch:
    with app.app_context():
        actor = _users(["admin"])[0]
        template = db.session.execute(db.select(Template)).scalar_one()
        batch = batch_service.start_batch_create(actor, template, _users(names),
                                                 pattern=pattern, per_user=per_user,
                                                 expires_at=expires_at)
        task_service.execute(batch.task_id)      # the worker's part
        return batch.id


def _placed(app) -> dict[str, str]:
    with app.app_context():
        return {f"{vm.owner.username}/{vm.name}": vm.host.name
                for vm in db.session.execute(db.select(VM)).scalars()}


def test_one_vm_each_spread_by_free_memory(app, pool, people):
    batch_id = _run(app, "lab1-{username}", ["ann", "ben", "cai", "dan", "eva"])
    # h2 16 GiB, h1 8 GiB, 4 GiB each: h2, h2, then a tie at 8 GiB (h2 ranked first),
    # h1, then h2 (4 GiB left on each, h2 first again)
    assert _placed(app) == {"ann/lab1-ann": "h2", "ben/lab1-ben": "h2",
                            "cai/lab1-cai": "h2", "dan/lab1-dan": "h1",
                            "eva/lab1-eva": "h2"}
    with app.app_context():
        batch = db.session.get(Batch, batch_id)
        assert batch.failure_items == []
        assert {vm.name for vm in batch.vms} == {f"lab1-{n}" for n in
                                                 ("ann", "ben", "cai", "dan", "eva")}
        assert batch.task.state == "succeeded"
        assert tasklist.says(batch.task.result) == "5 of 5 VMs made."


def test_partial_failures_are_listed_and_the_successes_kept(app, pool, people):
    with app.app_context():
        ben = _users(["ben"])[0]
        ben.max_vms = 0                    # no room for ben
        db.session.commit()
    _run(app, "exam", ["ann"])             # ann has a VM named exam already
    batch_id = _run(app, "exam", ["ann", "ben", "cai"])
    with app.app_context():
        batch = db.session.get(Batch, batch_id)
        assert [vm.owner.username for vm in batch.vms] == ["cai"]
        failures = {user: reason for user, _, reason in batch_service.failures(batch)}
        assert failures["ann"] == "You already have a VM named exam."
        assert failures["ben"].startswith("Over quota: VMs 0 in use + 1 would exceed 0")
        assert tasklist.says(batch.task.result).startswith(
            "1 of 3 VMs made. 2 could not be made: exam (ann): You already have a VM named "
            "exam.")
    assert sorted(_placed(app)) == ["ann/exam", "cai/exam"]


def test_n_each_and_the_pattern_is_checked_before_anything(app, pool, people):
    _run(app, "web{n}-{username}", ["ann"], per_user=2)
    assert sorted(_placed(app)) == ["ann/web1-ann", "ann/web2-ann"]
    with app.app_context():
        actor, template = _users(["admin"])[0], db.session.execute(
            db.select(Template)).scalar_one()
        for pattern, per_user, field, says in [
            ("lab-{user}", 1, "pattern", "Use {username} and {n}"),
            ("lab-{username", 1, "pattern", "unmatched brace"),
            ("lab-{username}", 2, "pattern", "Put {n} in the pattern"),
            ("lab {username}", 1, "pattern", "is not a valid VM name"),
            ("lab-{username}", 0, "per_user", "Make 1 to 20 VMs per user."),
        ]:
            with pytest.raises(FieldError) as refused:
                batch_service.start_batch_create(actor, template, _users(["ann", "ben"]),
                                                 pattern=pattern, per_user=per_user)
            assert refused.value.field == field and says in str(refused.value), pattern
        with pytest.raises(FieldError, match="expiry in the future"):
            batch_service.start_batch_create(actor, template, _users(["ann"]),
                                             expires_at=utcnow() - timedelta(minutes=1))
        assert db.session.execute(db.select(db.func.count(Batch.id))).scalar() == 1
        assert db.session.execute(db.select(db.func.count(Task.id))).scalar() == 1


def test_a_host_that_fails_is_left_out_and_its_vm_made_elsewhere(app, pool, people):
    with app.app_context():
        h2 = db.session.execute(db.select(Host).filter_by(name="h2")).scalar_one()
        h2.uri = "test:///nonexistent/h2.xml"    # h2 no longer answers
        db.session.commit()
    with app.app_context():
        actor, template = _users(["admin"])[0], db.session.execute(
            db.select(Template)).scalar_one()
        batch = batch_service.start_batch_create(actor, template, _users(["ann", "ben"]),
                                                 pattern="lab-{username}")
        task_service.execute(batch.task_id)
    assert _placed(app) == {"ann/lab-ann": "h1", "ben/lab-ben": "h1"}


def test_batch_actions_start_shut_down_delete(app, pool, people):
    batch_id = _run(app, "lab-{username}", ["ann", "ben"])
    with app.app_context():
        batch, actor = db.session.get(Batch, batch_id), _users(["admin"])[0]
        vms = batch_service.batch_vms(batch)
        lifecycle.act_on_vm(vms[0], "poweroff")
        task = batch_actions.start_batch_action(actor, vms, "poweroff", "batch 1")
        task_service.execute(task.id)
        task = db.session.get(Task, task.id)
        assert tasklist.says(task.result).startswith(
            "1 of 2 VMs forced off. 1 skipped: lab-ann: ")
        assert {lifecycle.hypervisor(vm.host).domain_state(vm.uuid) for vm in vms} == \
            {"shut off"}
        task = batch_actions.start_batch_action(actor, vms, "delete", "batch 1")
        task_service.execute(task.id)
        assert tasklist.says(db.session.get(Task, task.id).result) == "2 of 2 VMs deleted."
        assert db.session.execute(db.select(VM)).scalars().all() == []
        with pytest.raises(Conflict, match="There are no VMs to start in batch 1."):
            batch_actions.start_batch_action(actor, [], "start", "batch 1")


def test_expired_vms_are_shut_off_kept_and_not_started_until_extended(app, pool, people):
    batch_id = _run(app, "lab-{username}", ["ann"],
                    expires_at=utcnow() + timedelta(hours=1))
    with app.app_context():
        [vm] = batch_service.batch_vms(db.session.get(Batch, batch_id))
        vm.live_state = "running"       # as the watcher keeps it
        db.session.commit()
        assert expiry.expire_due(utcnow()) == {"expired": 0, "forced off": 0}
        later = utcnow() + timedelta(hours=1, minutes=1)
        assert expiry.expire_due(later) == {"expired": 1, "forced off": 0}
        vm = db.session.get(VM, vm.id)
        assert vm.expired_at == later
        hv = lifecycle.hypervisor(vm.host)
        # the test driver's guest obeys the shutdown at once
        assert hv.domain_state(vm.uuid) == "shut off"
        with pytest.raises(Conflict, match="lab-ann expired on .* ask the administrator"):
            lifecycle.act_on_vm(vm, "start")
        message = expiry.set_expiry(db.session.get(Batch, batch_id),
                                    utcnow() + timedelta(days=7))
        assert message.startswith("The batch's VMs now expire on ")
        vm = db.session.get(VM, vm.id)
        assert vm.expired_at is None
        lifecycle.act_on_vm(vm, "start")
        assert hv.domain_state(vm.uuid) == "running"


def test_an_expired_vm_that_ignores_the_shutdown_is_forced_off(app, pool, people):
    batch_id = _run(app, "lab-{username}", ["ann"],
                    expires_at=utcnow() + timedelta(minutes=5))
    with app.app_context():
        [vm] = batch_service.batch_vms(db.session.get(Batch, batch_id))
        vm.expired_at = utcnow() - expiry.GRACE - timedelta(seconds=1)
        vm.live_state = "running"       # still running after the grace
        db.session.commit()
        assert expiry.expire_due() == {"expired": 0, "forced off": 1}
        assert lifecycle.hypervisor(vm.host).domain_state(vm.uuid) == "shut off"
        assert db.session.get(VM, vm.id) is not None       # kept
