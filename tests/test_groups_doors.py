"""Groups (issue 16) through the command line (`manage.py groups`, `templates add
--group`, `vms create`) and the REST API (/api/v1/groups, the templates' visibility):
the same services and the same answers as the pages."""
from __future__ import annotations

import pytest

from loucloud.extensions import db
from loucloud.models import VM, Group, GroupMember, Template, User
from tests.conftest import Client
from tests.factories import make_catalog, make_user
from tests.support.api import ApiClient, make_token


@pytest.fixture
def catalog(app, test_host):
    with app.app_context():
        make_user("admin", is_admin=True)
        make_user("alice")
        make_user("bob")
        return make_catalog(("h1", test_host))


def cli(app, *args, input=None):
    return app.test_cli_runner().invoke(args=list(args), input=input)


def members(app, name: str) -> list[tuple[str, bool]]:
    with app.app_context():
        return sorted(db.session.execute(
            db.select(User.username, GroupMember.manager)
            .join(GroupMember, GroupMember.user_id == User.id)
            .join(Group, Group.id == GroupMember.group_id).where(Group.name == name)).all())


# -- the command line ------------------------------------------------------------------
def test_cli_creates_lists_fills_and_deletes_a_group(app, catalog, tmp_path):
    result = cli(app, "groups", "create", "lab", "--description", "Monday lab",
                 "--max-vms", "4")
    assert (result.exit_code, result.output) == (0, "created group lab\n")
    assert cli(app, "groups", "create", "lab").exit_code == 1
    result = cli(app, "groups", "add-members", "lab", "alice", "bob", "--manager")
    assert result.exit_code == 0 and "Added to lab as managers: alice, bob." in result.output
    result = cli(app, "groups", "add-members", "lab", "nobody")
    assert result.exit_code == 1 and "There is no user named nobody." in result.stderr
    assert cli(app, "groups", "add-members", "lab").exit_code == 1   # nothing to add
    listing = cli(app, "groups", "list", "--json")
    assert listing.exit_code == 0
    assert '"members": 2' in listing.output and '"max_vms": 4' in listing.output
    result = cli(app, "groups", "delete", "lab", input="n\n")
    assert result.exit_code == 1 and "nothing was changed" in result.stderr
    result = cli(app, "groups", "delete", "lab", "--yes")
    assert result.exit_code == 0
    assert "Group lab deleted; its users and their VMs stay." in result.output
    assert members(app, "lab") == []
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(User.id))).scalar() == 3


def test_cli_creates_users_from_a_csv_file_and_prints_their_passwords_once(app, catalog,
                                                                         tmp_path):
    cli(app, "groups", "create", "lab")
    bad = tmp_path / "bad.csv"
    bad.write_text("username,full name,email\ncarol,Carol,carol@example.org\nbad name\n")
    result = cli(app, "groups", "add-members", "lab", "--csv", str(bad))
    assert result.exit_code == 1
    assert "error: Nothing was created: line 3 is wrong." in result.stderr
    assert "line 3: Login names use 2 to 32 ASCII letters" in result.stderr
    assert members(app, "lab") == []
    good = tmp_path / "good.csv"
    good.write_text("carol,Carol,carol@example.org\ndave,Dave\n")
    result = cli(app, "groups", "add-members", "lab", "--csv", str(good))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "created 2 users in lab; their passwords, shown only now:"
    assert lines[1] == "username,full_name,email,password"
    password = lines[2].split(",")[3]
    assert Client(app).login("carol", password).status_code == 302
    assert members(app, "lab") == [("carol", False), ("dave", False)]
    shown = cli(app, "groups", "show", "lab")
    assert "carol" in shown.output and password not in shown.output


def test_cli_templates_for_groups_and_vms_create_for_a_member_only(app, catalog):
    cli(app, "groups", "create", "lab")
    cli(app, "groups", "add-members", "lab", "alice")
    result = cli(app, "templates", "add", "lab-only", "--image", "base", "--vcpus", "1",
                 "--memory", "512", "--disk", "2", "--group", "lab")
    assert result.exit_code == 0, result.output
    assert "lab-only" in cli(app, "templates", "list").output
    result = cli(app, "vms", "create", "x", "--owner", "bob", "--template", "lab-only",
                 "--no-start")
    assert result.exit_code == 1
    assert result.stderr == "error: The template lab-only is kept for groups bob is not a " \
        "member of.\n"
    result = cli(app, "vms", "create", "y", "--owner", "alice", "--template", "lab-only",
                 "--no-start")
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.execute(db.select(VM.name)).scalars().all() == ["y"]
    result = cli(app, "templates", "add", "t2", "--image", "base", "--vcpus", "1",
                 "--memory", "512", "--disk", "2", "--group", "nope")
    assert result.exit_code == 1 and "There is no group named nope." in result.stderr


# -- the API ---------------------------------------------------------------------------
def test_api_groups_from_creation_to_deletion(app, catalog):
    admin = ApiClient(app, make_token(app, "admin"))
    response = admin.post("/api/v1/groups", json={"name": "lab", "quota": {"max_vms": 3}})
    assert response.status_code == 201, response.json
    group = response.json
    assert (group["quota"]["max_vms"], group["quota"]["max_vcpus"]) == (3, None)
    url = response.headers["Location"]
    response = admin.post(url + "/members", json={"usernames": ["alice"]})
    assert response.json["message"] == "Added to lab: alice."
    response = admin.post(url + "/users", json={"csv": "carol,Carol\nbad name\n"})
    assert response.status_code == 422
    assert response.json["errors"]["line 2"].startswith("Login names use 2 to 32 ASCII letters")
    response = admin.post(url + "/users", json={"csv": "carol,Carol\n", "manager": True})
    assert response.status_code == 201
    [new] = response.json["items"]
    assert new["username"] == "carol" and len(new["password"]) >= 12
    detail = admin.get(url).json
    assert [(m["username"], m["manager"]) for m in detail["member_list"]] == \
        [("alice", False), ("carol", True)]
    carol_id = detail["member_list"][1]["user_id"]
    assert admin.patch(f"{url}/members/{carol_id}", json={"manager": False}).json[
        "message"] == "carol is no longer a manager of lab."
    assert admin.patch(url, json={"quota": {"max_vms": None}, "description": "d"}).json[
        "quota"]["max_vms"] is None
    assert admin.delete(f"{url}/members/{carol_id}").status_code == 200
    assert admin.delete(url).json["message"] == \
        "Group lab deleted; its users and their VMs stay."
    assert admin.get(url).status_code == 404


def test_api_templates_are_offered_to_their_groups_only(app, catalog):
    admin = ApiClient(app, make_token(app, "admin"))
    group_id = admin.post("/api/v1/groups", json={"name": "lab"}).json["id"]
    admin.post(f"/api/v1/groups/{group_id}/members", json={"usernames": ["alice"]})
    response = admin.post("/api/v1/templates", json={
        "name": "lab-only", "image_id": catalog.image_id, "vcpus": 1, "memory_mib": 512,
        "disk_gib": 2, "public": False, "group_ids": [group_id]})
    assert response.status_code == 201, response.json
    restricted = response.json
    assert (restricted["public"], restricted["group_ids"]) == (False, [group_id])
    alice = ApiClient(app, make_token(app, "alice"))
    bob = ApiClient(app, make_token(app, "bob"))
    assert [t["name"] for t in alice.get("/api/v1/templates").json["items"]] == \
        ["lab-only", "small"]
    assert [t["name"] for t in bob.get("/api/v1/templates").json["items"]] == ["small"]
    assert "public" not in alice.get(f"/api/v1/templates/{restricted['id']}").json
    assert bob.get(f"/api/v1/templates/{restricted['id']}").status_code == 404
    body = {"name": "v", "template_id": restricted["id"], "start": False}
    assert bob.post("/api/v1/vms", json=body).status_code == 404
    assert alice.post("/api/v1/vms", json=body).status_code == 201
    # public again: everybody's; a public template names no groups
    response = admin.patch(f"/api/v1/templates/{restricted['id']}", json={"public": True})
    assert (response.json["public"], response.json["group_ids"]) == (True, [])
    assert bob.get(f"/api/v1/templates/{restricted['id']}").status_code == 200
    response = admin.patch(f"/api/v1/templates/{restricted['id']}",
                           json={"group_ids": [group_id]})
    assert response.status_code == 422
    assert "make it restricted" in response.json["errors"]["group_ids"]
    with app.app_context():
        assert db.session.get(Template, restricted["id"]).public is True


def test_api_groups_are_the_administrators_and_their_managers(app, catalog):
    admin = ApiClient(app, make_token(app, "admin"))
    group_id = admin.post("/api/v1/groups", json={"name": "lab"}).json["id"]
    admin.post(f"/api/v1/groups/{group_id}/members", json={"usernames": ["alice"]})
    alice = ApiClient(app, make_token(app, "alice"))
    assert alice.get("/api/v1/groups").json["items"] == []
    assert alice.get(f"/api/v1/groups/{group_id}").status_code == 404
    assert alice.post("/api/v1/groups", json={"name": "mine"}).status_code == 403
    assert alice.delete(f"/api/v1/groups/{group_id}").status_code == 403
