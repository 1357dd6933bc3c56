"""Who may use a VM (services/access.py): its owner and the administrator (and, for its
operations, a manager of its owner's group); everybody else gets the answer a VM that
does not exist gets, from every door: pages, JSON, lists, the service the command line
and the console proxy use."""
from __future__ import annotations

import pytest

from loucloud.extensions import db
from loucloud.models import INT64_MAX, User
from loucloud.services import NotFound
from loucloud.services.access import vm_for
from tests.conftest import Client
from tests.factories import make_catalog, make_user, make_vm


@pytest.fixture
def world(app, test_host, admin, user, other_user):
    """alice owns "alices-vm", bob owns "bobs-vm"; browsers for both and the admin."""
    with app.app_context():
        template = make_catalog(("h1", test_host))
        mine = make_vm(user.id, "alices-vm", template.id, start=False)
        theirs = make_vm(other_user.id, "bobs-vm", template.id, start=False)
    clients = {name: Client(app) for name in ("alice", "bob", "admin")}
    for name, client in clients.items():
        assert client.login(name).status_code == 302
    return {"alice": mine.id, "bob": theirs.id, **{f"as_{k}": v for k, v in clients.items()}}


def _answers(client, vm_id: int) -> list[int]:
    return [client.get(f"/vms/{vm_id}").status_code,
            client.get(f"/vms/{vm_id}.json").status_code,
            client.get(f"/vms/{vm_id}/screen").status_code,
            client.get(f"/vms/{vm_id}/metrics.json").status_code,
            client.post(f"/vms/{vm_id}/start").status_code,
            client.post(f"/vms/{vm_id}/console").status_code,
            client.post(f"/vms/{vm_id}/delete").status_code]


def test_someone_elses_vm_answers_like_one_that_does_not_exist(world):
    bob = world["as_bob"]
    assert _answers(bob, world["alice"]) == [404] * 7
    assert _answers(bob, world["alice"] + 1000) == [404] * 7
    # And the owner's VM is there for its owner and for the administrator.
    assert world["as_alice"].get(f"/vms/{world['alice']}").status_code == 200
    assert world["as_admin"].get(f"/vms/{world['alice']}.json").status_code == 200


def test_lists_show_the_users_own_vms_and_the_administrator_all(world):
    ids = f"{world['alice']},{world['bob']}"
    seen = {}
    for name in ("alice", "bob", "admin"):
        client = world[f"as_{name}"]
        page = client.get("/").get_data(as_text=True)
        states = client.get(f"/vms/states.json?ids={ids}").get_json()
        seen[name] = ({vm for vm in ("alices-vm", "bobs-vm") if vm in page}, set(states))
    assert seen["alice"] == ({"alices-vm"}, {str(world["alice"])})
    assert seen["bob"] == ({"bobs-vm"}, {str(world["bob"])})
    assert seen["admin"] == ({"alices-vm", "bobs-vm"}, {str(world["alice"]), str(world["bob"])})


@pytest.mark.parametrize("vm_id", [0, -1, INT64_MAX, INT64_MAX + 1, 2 ** 100])
def test_ids_no_vm_can_have_are_simply_not_found(app, world, vm_id):
    """The service the JSON routes, the proxy and the command line share: no id, however
    large, is an error of the database (an OverflowError would be a 500)."""
    with app.app_context():
        alice = db.session.execute(db.select(User).where(User.username == "alice")).scalar_one()
        with pytest.raises(NotFound):
            vm_for(alice, vm_id)
        assert vm_for(alice, world["alice"]).name == "alices-vm"
    assert world["as_alice"].get(f"/vms/{vm_id}.json").status_code == 404


def test_a_group_manager_gets_the_members_vm_for_its_operations_only(app, world):
    """Issue 16: a manager of a group alice is in sees her VM's state and screen, starts
    it and asks for its console; its page, charts and delete stay "not found" to him,
    and bob's VM too, as to anybody (services/access.py)."""
    from loucloud.services import groups

    with app.app_context():
        make_user("teacher")
        lab = groups.create_group("lab")
        groups.add_members(lab, groups.users_named(["alice"]))
        groups.add_members(lab, groups.users_named(["teacher"]), manager=True)
    teacher = Client(app)
    assert teacher.login("teacher").status_code == 302
    # page, state, screen, charts, start, console (refused: no screen: back), delete
    assert _answers(teacher, world["alice"]) == [404, 200, 200, 404, 302, 302, 404]
    assert _answers(teacher, world["bob"]) == [404] * 7
    assert _answers(teacher, world["alice"] + 1000) == [404] * 7
