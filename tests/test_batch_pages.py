"""Batch create from the pages (issue 16): the administrator and a group's manager (a
teacher) make one VM for each member of the group (its managers excepted) from the
group's page, follow the batch's VMs and what could not be made, shut them all down at
the end of class, move their expiry; anybody else is refused, and a teacher never sees
another group's batch."""
from __future__ import annotations

import re

import pytest

from loucloud.extensions import db
from loucloud.models import VM, Batch, Task, User
from loucloud.services import groups as group_service
from loucloud.services import tasklist
from loucloud.services import tasks as task_service
from tests.conftest import Client
from tests.factories import make_catalog, make_user


@pytest.fixture
def world(app, test_host):
    """teacher manages lab (members ann, ben; ben has no room for a VM); carl is in no
    group; the group other has its own batch."""
    with app.app_context():
        make_user("admin", is_admin=True)
        teacher, ann, carl = make_user("teacher"), make_user("ann"), make_user("carl")
        ben = make_user("ben", max_vms=0)
        template = make_catalog(("h1", test_host))
        lab = group_service.create_group("lab")
        group_service.add_members(lab, [db.session.get(User, u.id) for u in (ann, ben)])
        group_service.add_members(lab, [db.session.get(User, teacher.id)], manager=True)
        other = group_service.create_group("other")
        foreign = Batch(pattern="x-{username}", template_id=template.id,
                        template_name=template.name, group_id=other.id)
        db.session.add(foreign)
        db.session.commit()
        ids = {"lab": lab.id, "template": template.id, "foreign": foreign.id}
    clients = {}
    for name in ("admin", "teacher", "carl", "ann"):
        clients[name] = Client(app)
        assert clients[name].login(name).status_code == 302
    return ids, clients


def _run_latest_task(app) -> str:
    """Run the latest task as the worker does; what it did, said in English."""
    with app.app_context():
        task = db.session.execute(db.select(Task).order_by(Task.id.desc())).scalars().first()
        task_service.execute(task.id)
        return tasklist.says(db.session.get(Task, task.id).result)


def _vms(app) -> list[tuple[str, str, str]]:
    with app.app_context():
        return sorted((vm.owner.username, vm.name, vm.live_state or "")
                      for vm in db.session.execute(db.select(VM)).scalars())


def test_a_teacher_makes_his_classs_vms_and_ends_the_class(app, world):
    ids, clients = world
    teacher = clients["teacher"]
    group_page = teacher.get(f"/groups/{ids['lab']}").get_data(as_text=True)
    assert f'href="/batches/new?group_id={ids["lab"]}"' in group_page
    form = teacher.get(f"/batches/new?group_id={ids['lab']}").get_data(as_text=True)
    assert re.search(rf'<option selected value="{ids["lab"]}">lab</option>', form)
    assert "a list of users" not in form            # the administrator's choice only
    made = teacher.post("/batches/new", {"group_id": str(ids["lab"]),
                                         "template_id": str(ids["template"]),
                                         "pattern": "lab1-{username}", "per_user": "1",
                                         "expires_at": "2099-06-30T17:00"})
    assert made.status_code == 302
    batch_url = made.headers["Location"]
    assert _run_latest_task(app).startswith("1 of 2 VMs made. 1 could not be made: "
                                                   "lab1-ben (ben): Over quota: VMs 0 in use")
    assert _vms(app) == [("ann", "lab1-ann", "running")]   # the teacher gets none
    page = teacher.get(batch_url).get_data(as_text=True)
    assert 'data-vm="lab1-ann"' in page and 'data-owner="ben"' in page
    assert "The VMs expire on 2099-06-30 17:00 UTC." in page
    # end of class, from the group's page
    ended = teacher.post(f"/batches/group/{ids['lab']}/poweroff")
    assert ended.status_code == 302 and "/tasks/" in ended.headers["Location"]
    assert _run_latest_task(app) == "1 of 1 VMs forced off."
    assert _vms(app) == [("ann", "lab1-ann", "shut off")]
    # the expiry removed
    assert teacher.post(f"{batch_url}/expiry", {"expires_at": ""}).status_code == 302
    assert "The VMs never expire." in teacher.get(batch_url).get_data(as_text=True)
    # the list shows his batch only, another group's is not found
    listed = teacher.get("/batches/").get_data(as_text=True)
    assert "lab1-{username}" in listed and "x-{username}" not in listed
    assert teacher.get(f"/batches/{ids['foreign']}").status_code == 404
    assert teacher.post(f"/batches/{ids['foreign']}/delete").status_code == 404


def test_the_administrator_batches_a_list_of_users(app, world):
    ids, clients = world
    admin = clients["admin"]
    refused = admin.post("/batches/new", {"group_id": "0", "usernames": "ann nobody",
                                          "template_id": str(ids["template"]),
                                          "pattern": "{username}-vm", "per_user": "1"})
    assert refused.status_code == 400
    assert "There is no user nobody." in refused.get_data(as_text=True)
    made = admin.post("/batches/new", {"group_id": "0", "usernames": "ann, carl",
                                       "template_id": str(ids["template"]),
                                       "pattern": "web{n}", "per_user": "2"})
    assert made.status_code == 302
    assert _run_latest_task(app) == "4 of 4 VMs made."
    assert [v[:2] for v in _vms(app)] == [("ann", "web1"), ("ann", "web2"),
                                          ("carl", "web1"), ("carl", "web2")]
    deleted = admin.post(made.headers["Location"] + "/delete")
    assert deleted.status_code == 302
    assert _run_latest_task(app) == "4 of 4 VMs deleted."
    assert _vms(app) == []


def test_nobody_else_makes_or_sees_batches(app, world):
    ids, clients = world
    for name in ("carl", "ann"):      # in no group; a member, not a manager
        client = clients[name]
        assert client.get("/batches/").status_code == 403
        assert client.get("/batches/new").status_code == 403
        assert client.get(f"/batches/{ids['foreign']}").status_code == 403
        assert client.post(f"/batches/group/{ids['lab']}/delete").status_code == 403
    assert _vms(app) == []
