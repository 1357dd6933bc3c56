"""A group's managers (issue 16) as they meet their powers: from the group's page (and
the API) they start, stop, reset and open the consoles of the members' VMs, and nothing
else: every other verb of those VMs, and every VM outside the group, is "not found",
exactly like a VM that does not exist; naming them no longer manager ends it at once."""
from __future__ import annotations

import pytest

from loucloud.extensions import db
from loucloud.models import VM, User
from loucloud.services import console as console_service
from loucloud.services import groups as group_service
from loucloud.services.console import ConsoleRefused
from loucloud.services.hypervisors import pool
from tests.conftest import Client
from tests.factories import give_screen, make_catalog, make_user, make_vm
from tests.support.api import ApiClient, make_token


@pytest.fixture
def world(app, test_host):
    """teacher manages the group lab, whose member alice runs a1; bob (in no group) runs
    b1. Browsers for teacher and the administrator."""
    with app.app_context():
        make_user("admin", is_admin=True)
        teacher, alice, bob = make_user("teacher"), make_user("alice"), make_user("bob")
        template = make_catalog(("h1", test_host))
        a1 = make_vm(alice.id, "a1", template.id)
        b1 = make_vm(bob.id, "b1", template.id)
        group = group_service.create_group("lab")
        group_service.add_members(group, [db.session.get(User, alice.id)])
        group_service.add_members(group, [db.session.get(User, teacher.id)], manager=True)
        group_id = group.id
    give_screen(app, test_host, a1.uuid)
    teacher_client = Client(app)
    assert teacher_client.login("teacher").status_code == 302
    return {"uri": test_host, "a1": a1.id, "a1_uuid": a1.uuid, "b1": b1.id,
            "group": group_id, "teacher": teacher.id, "as_teacher": teacher_client}


def domain_state(app, world, uuid: str) -> str:
    def read(conn):
        return "running" if conn.lookupByUUIDString(uuid).isActive() else "shut off"
    with app.app_context():
        return pool().call(world["uri"], read, timeout=10)


def test_the_group_page_shows_the_members_vms_with_their_state_and_buttons(app, world):
    teacher = world["as_teacher"]
    page = teacher.get(f"/groups/{world['group']}").get_data(as_text=True)
    assert f'data-vm-row="{world["a1"]}"' in page and 'data-state="running"' in page
    assert f'action="/vms/{world["a1"]}/shutdown"' in page
    # (no console button: the test driver's host is a simulated one, as on the VM page)
    assert f'action="/vms/{world["a1"]}/pause"' not in page      # not a manager's verb
    assert f'action="/vms/{world["a1"]}/delete"' not in page
    assert 'action="/groups/' not in page.split("<main")[1]      # nothing to administer
    # (not the bare text "b1": the page's random CSRF token may hold it)
    assert f'data-vm-row="{world["b1"]}"' not in page and ">b1<" not in page
    # his own list of VMs stays his own; the states the group page follows are there
    own = teacher.get("/").get_data(as_text=True)
    assert f'data-vm-row="{world["a1"]}"' not in own and ">a1<" not in own
    states = teacher.get(f"/vms/states.json?ids={world['a1']},{world['b1']}").get_json()
    assert set(states) == {str(world["a1"])}


def test_a_manager_stops_and_starts_a_members_vm_and_comes_back_to_the_group(app, world):
    teacher, a1 = world["as_teacher"], world["a1"]
    back = f"/groups/{world['group']}"
    response = teacher.post(f"/vms/{a1}/poweroff", {"next": back})
    assert response.status_code == 302 and response.headers["Location"] == back
    assert domain_state(app, world, world["a1_uuid"]) == "shut off"
    assert "a1 was powered off." in teacher.get(back).get_data(as_text=True)
    assert teacher.post(f"/vms/{a1}/start", {"next": back}).status_code == 302
    assert domain_state(app, world, world["a1_uuid"]) == "running"
    assert teacher.post(f"/vms/{a1}/reset", {"next": "//evil.example"}).headers[
        "Location"] == "/groups/"                                  # only paths of the site
    assert teacher.get(f"/vms/{a1}.json").get_json()["name"] == "a1"


def test_a_manager_opens_a_members_console(app, world):
    teacher, a1 = world["as_teacher"], world["a1"]
    back = f"/groups/{world['group']}"
    response = teacher.post(f"/vms/{a1}/console", {"next": back})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(f"/vms/{a1}/screen?next=")
    token = location.split("#", 1)[1]
    screen = teacher.get(location.split("#")[0]).get_data(as_text=True)
    assert f'href="{back}"' in screen                          # back to the group page
    with app.app_context():
        assert console_service.consume(token, world["teacher"]).port == 5907


OWNERS_VERBS = [  # (method, path after /vms/<id>, form) that only the owner may use
    ("GET", "", None), ("GET", "/metrics.json", None), ("GET", "/live.json", None),
    ("GET", "/hardware.json", None), ("POST", "/delete", {}), ("POST", "/pause", {}),
    ("POST", "/save", {}), ("POST", "/resize", {"vcpus": "2"}),
    ("POST", "/disks", {"size_gib": "1"}), ("POST", "/snapshots", {"name": "s1"}),
    ("POST", "/rebuild", {}), ("POST", "/clone", {"name": "copy"}),
    ("POST", "/migrate", {"target_id": "1"}), ("POST", "/media", {"image_id": "1"}),
    ("POST", "/password", {"user": "debian", "password": "a new password 77"}),
]


@pytest.mark.parametrize("method,path,form", OWNERS_VERBS,
                         ids=[f"{m} {p or '/'}" for m, p, _ in OWNERS_VERBS])
def test_anything_else_on_a_members_vm_is_not_found(app, world, method, path, form):
    teacher, a1 = world["as_teacher"], world["a1"]
    url = f"/vms/{a1}{path}"
    response = teacher.get(url) if method == "GET" else teacher.post(url, form)
    assert response.status_code == 404
    with app.app_context():
        vm = db.session.get(VM, a1)
        assert (vm.vcpus, len(vm.disks), vm.status) == (1, 1, VM.READY)
    assert domain_state(app, world, world["a1_uuid"]) == "running"


def test_a_vm_outside_the_group_is_not_found(app, world):
    teacher, b1 = world["as_teacher"], world["b1"]
    for response in (teacher.post(f"/vms/{b1}/shutdown"), teacher.post(f"/vms/{b1}/console"),
                     teacher.get(f"/vms/{b1}/screen"), teacher.get(f"/vms/{b1}.json"),
                     teacher.post(f"/vms/{b1 + 1000}/start")):
        assert response.status_code == 404
    with app.app_context():
        teacher_user = db.session.get(User, world["teacher"])
        with pytest.raises(Exception, match="not yours to see"):
            console_service.issue_token(teacher_user, db.session.get(VM, b1))


def test_a_manager_uses_the_api_the_same_way(app, world):
    api = ApiClient(app, make_token(app, "teacher"))
    a1, b1 = world["a1"], world["b1"]
    assert api.get(f"/api/v1/vms/{a1}").json["name"] == "a1"
    assert api.post(f"/api/v1/vms/{a1}/console").status_code == 200
    assert api.post(f"/api/v1/vms/{a1}/actions/shutdown").status_code == 200
    for response in (api.post(f"/api/v1/vms/{a1}/actions/pause"),
                     api.delete(f"/api/v1/vms/{a1}"),
                     api.post(f"/api/v1/vms/{a1}/resize", json={"vcpus": 2}),
                     api.get(f"/api/v1/vms/{a1}/snapshots"),
                     api.get(f"/api/v1/vms/{b1}"),
                     api.post(f"/api/v1/vms/{b1}/actions/start")):
        assert response.status_code == 404, response.request.path
        assert response.mimetype == "application/problem+json"
    assert [g["name"] for g in api.get("/api/v1/groups").json["items"]] == ["lab"]
    assert [v["name"] for v in api.get(f"/api/v1/groups/{world['group']}/vms").json[
        "items"]] == ["a1"]
    assert api.get("/api/v1/vms").json["total"] == 0          # his own VMs only
    assert api.patch(f"/api/v1/groups/{world['group']}", json={"name": "x"}).status_code \
        == 403


def test_naming_him_no_longer_manager_ends_his_access_at_once(app, world):
    teacher, a1 = world["as_teacher"], world["a1"]
    response = teacher.post(f"/vms/{a1}/console")
    token = response.headers["Location"].split("#", 1)[1]
    admin = Client(app)
    admin.login("admin")
    response = admin.post(f"/groups/{world['group']}/members/{world['teacher']}/unmanager")
    assert response.status_code == 302
    assert "teacher is no longer a manager of lab." in admin.get(
        response.headers["Location"]).get_data(as_text=True)
    assert teacher.get(f"/groups/{world['group']}").status_code == 404
    assert teacher.post(f"/vms/{a1}/shutdown").status_code == 404
    assert teacher.get(f"/vms/{a1}/screen").status_code == 404
    assert teacher.get(f"/vms/states.json?ids={a1}").get_json() == {}
    with app.app_context(), pytest.raises(ConsoleRefused, match="no access to this VM"):
        console_service.consume(token, world["teacher"])
    assert domain_state(app, world, world["a1_uuid"]) == "running"
