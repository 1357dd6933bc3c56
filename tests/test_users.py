"""Users pages and services: create, list, edit, disable, delete, quota."""
from __future__ import annotations

import re

import pytest

from loucloud.extensions import db
from loucloud.models import VM, Disk, Image, Template, User
from loucloud.services import settings as settings_service
from tests.conftest import PASSWORD, Client
from tests.factories import make_server, make_user
from tests.support.fuzz import counted
from tests.support.fuzz_cli import cli_world, run_cli  # noqa: F401 (cli_world: a fixture)


def _new_user(as_admin, **over):
    data = {"username": "carol", "full_name": "Carol C", "email": "carol@example.org",
            "password": "carol's password", "confirm": "carol's password",
            "max_vms": 3, "max_vcpus": 6, "max_memory_mib": 4096, "max_disk_gib": 50}
    data.update(over)
    return as_admin.post("/users/new", data)


def _get_user(app, username) -> User | None:
    with app.app_context():
        user = db.session.execute(db.select(User).filter_by(username=username)).scalar()
        if user is not None:
            db.session.expunge(user)
        return user


def test_create_user_and_log_in(app, as_admin):
    response = _new_user(as_admin)
    assert response.status_code == 302
    carol = _get_user(app, "carol")
    assert (carol.max_vms, carol.max_vcpus, carol.max_memory_mib, carol.max_disk_gib) == \
        (3, 6, 4096, 50)
    assert not carol.is_admin
    assert "carol's password" not in carol.password_hash
    assert Client(app).login("carol", "carol's password").status_code == 302


def test_new_user_form_is_prefilled_with_settings_defaults(app, as_admin):
    with app.app_context():
        settings_service.update_settings({"default_max_vms": 7, "default_max_disk_gib": 70})
    page = as_admin.get("/users/new").get_data(as_text=True)
    assert re.search(r'name="max_vms"[^>]*value="7"', page)
    assert re.search(r'name="max_disk_gib"[^>]*value="70"', page)


@pytest.mark.parametrize("field,value,message", [
    ("username", "a", "between 2 and 32"),
    ("username", "bad name", "Login names use 2 to 32 ASCII letters"),
    ("username", "<script>", "Login names use 2 to 32 ASCII letters"),
    ("username", "张三", "full names may use any language"),
    ("username", "admin", "taken"),
    ("password", "short", "between 10 and 256"),
    ("email", "not-an-email", "email address"),
    ("max_vms", "-1", "between 0 and"),
    ("max_memory_mib", "99999999999999999999", "between 0 and"),
    ("max_vcpus", "lots", "Not a valid integer"),
])
def test_create_user_refuses_bad_input(app, as_admin, field, value, message):
    data = {field: value}
    if field == "password":
        data["confirm"] = value
    response = _new_user(as_admin, **data)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(User.id))).scalar() == 1


def test_passwords_must_match(as_admin):
    response = _new_user(as_admin, confirm="something else")
    assert "The two passwords differ" in response.get_data(as_text=True)


def test_list_search_and_filters(app, as_admin):
    with app.app_context():
        make_user("dave")
        make_user("erin", active=False)
    def names(query):
        page = as_admin.get(f"/users/?{query}").get_data(as_text=True)
        return set(re.findall(r'href="/users/\d+">([^<]+)</a>', page))
    assert names("") == {"admin", "dave", "erin"}
    assert names("q=DAV") == {"dave"}
    assert names("status=disabled") == {"erin"}
    assert names("status=active&role=user") == {"dave"}
    assert names("role=admin") == {"admin"}
    assert names("q=%3Cscript%3E") == set()


def test_edit_quota(app, as_admin, user):
    response = as_admin.post(f"/users/{user.id}/edit", {
        "username": "alice", "full_name": "Alice A", "email": "",
        "max_vms": 9, "max_vcpus": 9, "max_memory_mib": 9999, "max_disk_gib": 99})
    assert response.status_code == 302
    alice = _get_user(app, "alice")
    assert (alice.max_vms, alice.max_memory_mib, alice.full_name) == (9, 9999, "Alice A")
    page = as_admin.get(f"/users/{user.id}").get_data(as_text=True)
    assert "0 / 9999 MiB" in page


def test_rename_to_a_taken_name_is_refused(app, as_admin, user, other_user):
    response = as_admin.post(f"/users/{user.id}/edit", {
        "username": "bob", "full_name": "", "email": "",
        "max_vms": 1, "max_vcpus": 1, "max_memory_mib": 1, "max_disk_gib": 1})
    assert "taken" in response.get_data(as_text=True)
    assert _get_user(app, "alice") is not None


@pytest.mark.parametrize("action,message", [
    ("disable", "The administrator cannot be disabled."),
    ("delete", "The administrator cannot be deleted."),
])
def test_admin_cannot_be_disabled_or_deleted(app, as_admin, admin, action, message):
    response = as_admin.post(f"/users/{admin.id}/{action}", follow_redirects=True)
    assert message in response.get_data(as_text=True)
    assert _get_user(app, "admin").active


def _give_vm(app, user):
    with app.app_context():
        host = make_server("h1", "test:///default")
        image = Image(name="img", path="/img.qcow2", format="qcow2", virtual_size=1 << 30)
        template = Template(name="small", vcpus=1, memory_mib=512, disk_gib=2, image=image)
        vm = VM(name="vm1", owner_id=user.id, host_id=host.id, template=template,
                image=image, domain_name="lc-test", uuid="00000000-0000-0000-0000-000000000001",
                vcpus=1, memory_mib=512, disk_gib=2, status=VM.READY)
        vm.disks.append(Disk(target="vda", volume_name="lc-test.qcow2", size_gib=2,
                             system=True))
        db.session.add_all([image, template, vm])
        db.session.commit()


def test_delete_refused_while_user_owns_vms(app, as_admin, user):
    _give_vm(app, user)
    response = as_admin.post(f"/users/{user.id}/delete", follow_redirects=True)
    assert "still owns 1 VM" in response.get_data(as_text=True)
    assert _get_user(app, "alice") is not None


def test_delete_user(app, as_admin, user):
    victim = Client(app)
    victim.login("alice")
    response = as_admin.post(f"/users/{user.id}/delete")
    assert response.status_code == 302
    assert _get_user(app, "alice") is None
    assert victim.get("/profile").status_code == 302


def test_profile_shows_quota_used_and_total(app, user):
    _give_vm(app, user)
    client = Client(app)
    client.login("alice")
    page = client.get("/profile").get_data(as_text=True)
    assert "1 / 5" in page          # VMs
    assert "512 / 8192 MiB" in page  # memory
    assert "2 / 100 GiB" in page     # disk


def test_enable_again(app, as_admin):
    with app.app_context():
        erin = make_user("erin", active=False)
    as_admin.post(f"/users/{erin.id}/enable")
    assert Client(app).login("erin", PASSWORD).status_code == 302


# -- found by the fuzz tests once (tests/test_fuzz_cli.py): what MariaDB cannot hold ------
def test_cli_users_create_refuses_what_the_columns_cannot_hold(app, cli_world):
    """users.full_name is String(120), users.email String(254): SQLite would keep a longer
    value, MariaDB refuses the row (a DataError, a traceback)."""
    with counted("cli users create, over-long fields") as count:
        for i, option in enumerate([f"--full-name={'x' * 121}",
                                    f"--email={'e' * 250}@example.org",
                                    "--email=not an address"]):
            _, outcome = run_cli(cli_world, ["users", "create", option, "--", f"long{i}"],
                                 count, input="a good password 1\n")
            assert outcome == "error", option


def test_quota_counts_every_disk_of_every_vm(app, user):
    """One question to the database, the disks of all the user's VMs summed (a
    correlated subquery would have counted one VM's)."""
    from loucloud.services.users import quota_usage

    _give_vm(app, user)
    with app.app_context():
        first = db.session.execute(db.select(VM)).scalar_one()
        second = VM(name="vm2", owner_id=user.id, host_id=first.host_id,
                    template_id=first.template_id, image_id=first.image_id,
                    domain_name="lc-test2", uuid="00000000-0000-0000-0000-000000000002",
                    vcpus=1, memory_mib=512, disk_gib=2, status=VM.READY)
        second.disks.append(Disk(target="vda", volume_name="lc-test2.qcow2", size_gib=2,
                                 system=True))
        second.disks.append(Disk(target="vdb", volume_name="data.qcow2", size_gib=5,
                                 attached=False))
        db.session.add(second)
        db.session.commit()
        used = quota_usage(db.session.get(User, user.id)).used
        assert (used.vms, used.vcpus, used.memory_mib, used.disk_gib) == (2, 2, 1024, 9)
