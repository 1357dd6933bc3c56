"""Batch create under concurrent single creates by the same members (issue 16): the
batch's task runs in one thread while each member creates VMs of his own in others, all
released at once; no member and no group ever holds more than its quota, and every VM
refused is refused for a quota, said as such. On SQLite and on MariaDB (any_app)."""
from __future__ import annotations

import json
import threading
import time
from collections import Counter

from loucloud.extensions import db
from loucloud.models import VM, Batch, Group, Task, Template, User
from loucloud.services import group_quota, tasklist
from loucloud.services import groups as group_service
from loucloud.services import tasks as task_service
from loucloud.services.vms import batch as batch_service
from loucloud.services.vms import batch_access
from loucloud.services.vms import create as vm_create
from tests.factories import make_catalog, make_user

MEMBERS = [f"m{i}" for i in range(6)]
OWN = 2          # each member's own quota: exactly 2 VMs
GROUP = 8        # the group's: 8 VMs, fewer than the members' 6 x 2
SINGLES = 2      # single creates each member tries, besides the batch's 2 for him
OWN_REFUSAL = "Over quota: VMs"
GROUP_REFUSAL = "Over the quota of the group lab: VMs"


def test_batch_create_and_single_creates_at_once_never_pass_a_quota(
        any_app, test_host, test_host2, monkeypatch):
    app = any_app
    with app.app_context():
        template = make_catalog(("h1", test_host), ("h2", test_host2), memory_mib=256,
                                disk_gib=1)
        make_user("admin", is_admin=True)
        for name in MEMBERS:
            make_user(name, max_vms=OWN)
        group = group_service.create_group("lab", "", group_service.Limits(max_vms=GROUP))
        group_service.add_members(group, group_service.users_named(MEMBERS))
        admin = db.session.execute(db.select(User).filter_by(username="admin")).scalar_one()
        # two VMs each ({n}): with the singles, each member asks for 4, the group for 24
        batch = batch_access.start_group_batch(admin, group, db.session.get(
            Template, template.id), pattern="b-{username}-{n}", per_user=2)
        batch_id, task_id = batch.id, batch.task_id
        ids = {u.username: u.id for u in db.session.execute(db.select(User)).scalars()}

    barrier = threading.Barrier(1 + len(MEMBERS), timeout=60)
    singles: list[tuple[str, str, str]] = []   # (member, name, "made" or the refusal)
    errors: list[BaseException] = []
    batch_calls: list[tuple[float, float]] = []    # each of the batch's creates: start, end
    single_starts: list[float] = []
    batch_create = batch_service.create_vm

    def timed_batch_create(*args, **kw):
        # The race starts at the batch's first create (not at its task's start, which
        # first ranks the hosts): the singles are released with it.
        if not batch_calls:
            barrier.wait()
        start = time.monotonic()
        try:
            return batch_create(*args, **kw)
        finally:
            batch_calls.append((start, time.monotonic()))
    monkeypatch.setattr(batch_service, "create_vm", timed_batch_create)

    def run_batch():
        try:
            with app.app_context():
                task_service.execute(task_id)    # the worker's part, as it runs it
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    def run_singles(username: str):
        try:
            with app.app_context():
                owner = db.session.get(User, ids[username])
                chosen = db.session.get(Template, template.id)
                db.session.commit()
                barrier.wait()
                for k in range(1, SINGLES + 1):
                    name = f"s-{username}-{k}"
                    single_starts.append(time.monotonic())
                    try:
                        vm_create.create_vm(owner, name, chosen, start=False)
                        singles.append((username, name, "made"))
                    except vm_create.QuotaExceeded as exc:
                        singles.append((username, name, str(exc)))
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run_batch)]
    threads += [threading.Thread(target=run_singles, args=(name,)) for name in MEMBERS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a create never returned"
    assert errors == []

    with app.app_context():
        vms = db.session.execute(db.select(VM)).scalars().all()
        per_member = Counter(vm.owner.username for vm in vms)
        group = db.session.execute(db.select(Group).filter_by(name="lab")).scalar_one()
        batch = db.session.get(Batch, batch_id)
        task = db.session.get(Task, task_id)
        failures = batch_service.failures(batch)
        batch_made = {(vm.owner.username, vm.name) for vm in batch.vms}
        state, result = task.state, tasklist.says(task.result)
        in_use = group_quota.group_usage(group).used.vms

    # Nobody over his own quota, the group not over its own; and as the members asked
    # for more than both, the group is full: 8 VMs, not one fewer.
    assert max(per_member.values()) <= OWN, per_member
    assert len(vms) == in_use == GROUP, (per_member, failures, singles)
    # The batch finished and accounted for each of its 12 VMs: made, or refused.
    assert state == "succeeded", result
    assert len(batch_made) + len(failures) == 2 * len(MEMBERS)
    assert result.startswith(f"{len(batch_made)} of {2 * len(MEMBERS)} VMs made.")
    # Every refusal, the batch's and the singles', is a quota's, said as such.
    refusals = [reason for _owner, _name, reason in failures]
    refusals += [outcome for _owner, _name, outcome in singles if outcome != "made"]
    assert len(refusals) == 4 * len(MEMBERS) - GROUP
    for reason in refusals:
        assert reason.startswith((OWN_REFUSAL, GROUP_REFUSAL)), reason
    # What is there is exactly what the batch and the singles say they made.
    made_singles = {(o, n) for o, n, outcome in singles if outcome == "made"}
    assert {(vm.owner.username, vm.name) for vm in vms} == batch_made | made_singles
    assert len(singles) == SINGLES * len(MEMBERS)
    # They did run at the same time: single creates began while the batch was making.
    assert len(batch_calls) == 2 * len(MEMBERS)
    first, last = batch_calls[0][0], batch_calls[-1][1]
    assert any(first <= t <= last for t in single_starts)
    print(f"\n  batch made {len(batch_made)}, singles made {len(made_singles)}; "
          f"refused: {Counter(r.split(':')[0] for r in refusals)}; "
          f"batch failures {json.dumps(failures)[:200]}")
