"""Groups (issue 16) as their people meet them: the administrator's group pages, the
group's total quota on top of each member's own (atomic like a user's), templates
offered only to some groups, users created in bulk with passwords shown once. The
managers' access is tests/test_group_managers.py; the command line and the API
tests/test_groups_doors.py."""
from __future__ import annotations

import io
import re
import threading

import pytest

from loucloud.extensions import db
from loucloud.models import VM, AuditEvent, Group, GroupMember, Template, User
from loucloud.services import groups as group_service
from loucloud.services import templates as template_service
from loucloud.services.vms import create as vm_create
from loucloud.services.vms import resize
from tests.conftest import Client
from tests.factories import make_catalog, make_user, make_vm


@pytest.fixture
def catalog(app, test_host):
    """Host h1, image base, template small (1 vCPU, 512 MiB, 2 GiB)."""
    with app.app_context():
        return make_catalog(("h1", test_host))


def make_group(app, name: str, members=(), managers=(), **limits) -> int:
    with app.app_context():
        group = group_service.create_group(name, "", group_service.Limits(**limits))
        for names, manager in ((members, False), (managers, True)):
            if names:
                group_service.add_members(group, group_service.users_named(list(names)),
                                          manager=manager)
        return group.id


def create(client, name: str, template_id: int):
    return client.post("/vms/new", {"name": name, "template_id": template_id, "host_id": 0})


def vm_names(app) -> list[str]:
    with app.app_context():
        return sorted(db.session.execute(db.select(VM.name)).scalars())


def logged_in(app, username: str) -> Client:
    client = Client(app)
    assert client.login(username).status_code == 302
    return client


# -- the pages -------------------------------------------------------------------------
def test_the_administrator_creates_a_group_adds_members_and_sees_it(app, as_admin, user,
                                                                     other_user):
    response = as_admin.post("/groups/new", {"name": "CS101 spring", "description": "Lab",
                                             "max_vms": "10", "max_vcpus": ""})
    assert response.status_code == 302
    group_url = response.headers["Location"]
    response = as_admin.post(group_url + "/members", {"usernames": "alice, bob nobody"})
    assert response.status_code == 400
    assert "There is no user named nobody." in response.get_data(as_text=True)
    response = as_admin.post(group_url + "/members", {"usernames": "alice, bob"})
    assert response.status_code == 302
    page = as_admin.get(group_url).get_data(as_text=True)
    assert 'data-member="alice"' in page and 'data-member="bob"' in page
    assert "0 / 10" in page and "(no limit)" in page
    listing = as_admin.get("/groups/").get_data(as_text=True)
    assert 'data-group="CS101 spring"' in listing and "10 VMs" in listing
    with app.app_context():
        group = db.session.execute(db.select(Group)).scalar_one()
        assert (group.name, group.max_vms, group.max_vcpus) == ("CS101 spring", 10, None)


def test_a_group_name_is_unique_and_checked(app, as_admin):
    make_group(app, "lab")
    for name, message in (("LAB", "A group with this name exists."),
                          ("-x", "Use 1 to 64 letters (of any language), digits, spaces")):
        response = as_admin.post("/groups/new", {"name": name})
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)


def test_a_group_name_may_be_in_any_language(app, as_admin):
    """A class called 一班 (issue 16: display names in any language, groups too)."""
    response = as_admin.post("/groups/new", {"name": "一班"})
    assert response.status_code == 302
    assert 'data-group="一班"' in as_admin.get("/groups/").get_data(as_text=True)


def test_deleting_a_group_keeps_its_users_and_their_vms(app, catalog, as_admin, user):
    group_id = make_group(app, "lab", members=["alice"])
    with app.app_context():
        make_vm(user.id, "kept", catalog.id, start=False)
        restricted = template_service.create_template(
            "lab-only", template_service.Sizes(1, 512, 2), catalog.image_id,
            visibility=template_service.Visibility(False, (group_id,)))
        restricted_id = restricted.id
    page = as_admin.get(f"/groups/{group_id}").get_data(as_text=True)
    assert "Delete the group lab? Its users and their VMs stay" in page  # asked first
    response = as_admin.post(f"/groups/{group_id}/delete")
    assert response.status_code == 302
    followed = as_admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "Group lab deleted; its users and their VMs stay." in followed
    assert "offered to nobody but the administrator: lab-only." in followed
    assert vm_names(app) == ["kept"]
    with app.app_context():
        assert db.session.execute(db.select(User.username).filter_by(username="alice")).scalar()
        assert db.session.execute(db.select(GroupMember)).first() is None
        template = db.session.get(Template, restricted_id)
        assert (template.public, template.groups) == (False, [])


def test_group_pages_are_the_administrators_and_their_managers(app, as_admin, user,
                                                               other_user):
    group_id = make_group(app, "lab", members=["alice"])
    alice, bob = logged_in(app, "alice"), logged_in(app, "bob")
    assert alice.get(f"/groups/{group_id}").status_code == 404   # a member, no manager
    assert alice.get("/groups/new").status_code == 403
    assert "You manage no group." in bob.get("/groups/").get_data(as_text=True)
    assert 'href="/groups/"' not in bob.get("/profile").get_data(as_text=True)  # no menu
    make_group(app, "other", managers=["bob"])
    assert 'href="/groups/"' in bob.get("/profile").get_data(as_text=True)
    assert bob.get(f"/groups/{group_id}").status_code == 404     # not his group


# -- the group's quota -----------------------------------------------------------------
def test_the_group_quota_refuses_what_would_pass_it_and_the_own_quota_still_applies(
        app, catalog):
    with app.app_context():
        make_user("alice", max_vms=5)
        make_user("bob", max_vms=1)
    make_group(app, "lab", members=["alice", "bob"], max_vms=3, max_memory_mib=4096)
    alice, bob = logged_in(app, "alice"), logged_in(app, "bob")
    assert create(alice, "a1", catalog.id).status_code == 302
    assert create(alice, "a2", catalog.id).status_code == 302
    assert create(bob, "b1", catalog.id).status_code == 302
    response = create(alice, "a3", catalog.id)   # alice's own quota has room: the group's not
    assert response.status_code == 409
    assert "Over the quota of the group lab: VMs 3 in use by its members + 1 would exceed " \
        "3." in response.get_data(as_text=True)
    response = create(bob, "b2", catalog.id)      # bob's own quota is full first
    assert "Over quota: VMs 1 in use + 1 would exceed 1." in response.get_data(as_text=True)
    assert vm_names(app) == ["a1", "a2", "b1"]


def test_a_resize_is_held_to_the_group_quota_too(app, catalog):
    with app.app_context():
        alice = make_user("alice", max_vcpus=16)
    make_group(app, "lab", members=["alice"], max_vcpus=2)
    with app.app_context():
        vm = make_vm(alice.id, "grow", catalog.id, start=False)
        with pytest.raises(vm_create.QuotaExceeded, match="Over the quota of the group lab: "
                           "vCPUs 1 in use by its members \\+ 2 would exceed 2."):
            resize.resize_vm(db.session.get(VM, vm.id), vcpus=3)
        assert db.session.get(VM, vm.id).vcpus == 1
        resize.resize_vm(db.session.get(VM, vm.id), vcpus=2)   # fits exactly


def test_concurrent_creates_of_many_members_never_pass_the_group_quota(any_app, test_host):
    """Ten members create two VMs each at the same moment, each within his own quota:
    the group's total (5 VMs) is never passed, on SQLite and on MariaDB."""
    app = any_app
    with app.app_context():
        catalog = make_catalog(("h1", test_host))
        users = [make_user(f"s{i}", max_vms=5) for i in range(10)]
    make_group(app, "lab", members=[u.username for u in users], max_vms=5)
    outcomes = []
    barrier = threading.Barrier(20)

    def one(user_id: int, name: str):
        with app.app_context():
            owner = db.session.get(User, user_id)
            template = db.session.get(Template, catalog.id)
            db.session.commit()
            barrier.wait()
            try:
                vm_create.create_vm(owner, name, template, start=False)
                outcomes.append("ok")
            except vm_create.QuotaExceeded as exc:
                assert "Over the quota of the group lab" in str(exc)
                outcomes.append("quota")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=one, args=(u.id, f"{u.username}-{k}"))
               for u in users for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] * 5 + ["quota"] * 15
    assert len(vm_names(app)) == 5


# -- templates offered to groups -------------------------------------------------------
@pytest.fixture
def restricted(app, catalog, as_admin):
    """The template "lab-only", offered to the group lab (alice is a member; bob not),
    made through the templates page."""
    with app.app_context():
        make_user("alice")
        make_user("bob")
    group_id = make_group(app, "lab", members=["alice"])
    response = as_admin.post("/templates/new", {
        "name": "lab-only", "image_id": catalog.image_id, "vcpus": "1", "memory_mib": "512",
        "disk_gib": "2", "nic_kind": "network", "visibility": "groups",
        "group_ids": str(group_id)})
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        template = db.session.execute(db.select(Template).filter_by(name="lab-only")).scalar()
        return template.id


def test_a_restricted_template_is_offered_to_its_groups_only_on_the_new_vm_page(
        app, restricted, as_admin):
    alice, bob = logged_in(app, "alice"), logged_in(app, "bob")
    assert "lab-only" in alice.get("/vms/new").get_data(as_text=True)
    assert "lab-only" not in bob.get("/vms/new").get_data(as_text=True)
    assert "lab-only" in as_admin.get("/vms/new").get_data(as_text=True)
    response = create(bob, "sneaky", restricted)
    assert response.status_code == 400 and "Not a valid choice" in response.get_data(
        as_text=True)
    assert create(alice, "allowed", restricted).status_code == 302
    assert vm_names(app) == ["allowed"]
    listing = as_admin.get("/templates/").get_data(as_text=True)
    assert "lab" in listing and "everybody" in listing


def test_a_restricted_template_needs_a_group_and_existing_ones_stay_public(app, catalog,
                                                                           as_admin):
    with app.app_context():
        assert db.session.execute(db.select(Template.public)).scalar_one() is True
    response = as_admin.post("/templates/new", {
        "name": "nobodys", "image_id": catalog.image_id, "vcpus": "1", "memory_mib": "512",
        "disk_gib": "2", "nic_kind": "network", "visibility": "groups"})
    assert response.status_code == 400
    assert "Choose the groups it is offered to, or make it public." in \
        response.get_data(as_text=True)


def test_the_service_refuses_a_template_not_offered_to_the_owner(app, restricted):
    with app.app_context():
        bob = db.session.execute(db.select(User).filter_by(username="bob")).scalar_one()
        with pytest.raises(vm_create.FieldError, match="The template lab-only is kept for "
                           "groups bob is not a member of."):
            vm_create.create_vm(bob, "x", db.session.get(Template, restricted))
    assert vm_names(app) == []


# -- users in bulk ---------------------------------------------------------------------
def test_bulk_users_with_a_bad_line_create_nobody_and_say_which_lines(app, as_admin, user):
    group_id = make_group(app, "lab")
    text = ("username,full name,e-mail\n"
            "carol,Carol C,carol@example.org\n"
            "bad name,Bad,bad@example.org\n"
            "alice,Alice again,\n"
            "dave,Dave,not-an-address\n"
            "carol,Carol twice,\n")
    response = as_admin.post(f"/groups/{group_id}/users", {"users": text})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Nothing was created: 4 lines are wrong." in page
    assert 'data-line="3">Line 3: Login names use 2 to 32 ASCII letters' in page
    assert 'data-line="4">Line 4: The user name alice is taken.' in page
    assert 'data-line="5">Line 5: Enter an e-mail address' in page
    assert 'data-line="6">Line 6: carol is on line 2 already.' in page
    assert "All or nothing" in as_admin.get(f"/groups/{group_id}/users").get_data(
        as_text=True)
    with app.app_context():
        assert sorted(db.session.execute(db.select(User.username)).scalars()) == \
            ["admin", "alice"]


def test_bulk_users_get_passwords_shown_once_and_downloadable_once(app, as_admin):
    group_id = make_group(app, "lab")
    csv_file = (io.BytesIO("\ufeffcarol,Carol Chen,carol@example.org\ndave\n".encode()),
                "class.csv")
    response = as_admin.post(f"/groups/{group_id}/users", {"file": csv_file},
                             content_type="multipart/form-data")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    passwords = dict(re.findall(r'<tr data-user="(\w+)">.*?data-password>([^<]+)<', page))
    assert sorted(passwords) == ["carol", "dave"]
    assert Client(app).login("carol", passwords["carol"]).status_code == 302
    assert Client(app).login("dave", passwords["dave"]).status_code == 302
    ticket = re.search(r'name="ticket" type="hidden" value="([^"]+)"', page).group(1)
    key = re.search(r'name="key" type="hidden" value="([^"]+)"', page).group(1)
    download = as_admin.post(f"/groups/{group_id}/passwords.csv",
                             {"ticket": ticket, "key": key})
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert download.headers["Content-Disposition"] == 'attachment; filename="lab-passwords.csv"'
    lines = download.get_data(as_text=True).splitlines()
    assert lines[0] == "username,full_name,email,password"
    assert f"carol,Carol Chen,carol@example.org,{passwords['carol']}" in lines
    again = as_admin.post(f"/groups/{group_id}/passwords.csv", {"ticket": ticket, "key": key})
    assert again.status_code == 302
    assert "These passwords were downloaded already" in as_admin.get(
        again.headers["Location"]).get_data(as_text=True)
    # Never in the group's page again, nor in the audit log.
    assert passwords["carol"] not in as_admin.get(f"/groups/{group_id}").get_data(
        as_text=True)
    with app.app_context():
        log = " ".join(e.message + e.target for e in db.session.execute(
            db.select(AuditEvent)).scalars())
        assert "2 users created in lab." in log
        assert passwords["carol"] not in log and passwords["dave"] not in log
        members = db.session.execute(db.select(GroupMember)).scalars().all()
        assert sorted(m.user.username for m in members) == ["carol", "dave"]


def test_a_download_with_a_wrong_key_gives_nothing(app, as_admin):
    group_id = make_group(app, "lab")
    page = as_admin.post(f"/groups/{group_id}/users", {"users": "erin"}).get_data(
        as_text=True)
    ticket = re.search(r'name="ticket" type="hidden" value="([^"]+)"', page).group(1)
    wrong = as_admin.post(f"/groups/{group_id}/passwords.csv",
                          {"ticket": ticket, "key": "A" * 43 + "="})
    assert wrong.status_code == 302
    assert "This download link is not valid." in as_admin.get(
        wrong.headers["Location"]).get_data(as_text=True)


def test_a_users_page_names_his_groups_and_deleting_him_leaves_the_group(app, as_admin,
                                                                         user):
    group_id = make_group(app, "lab", managers=["alice"])
    page = as_admin.get(f"/users/{user.id}").get_data(as_text=True)
    assert f'<a href="/groups/{group_id}"><bdi>lab</bdi></a> <span class="badge text-bg-primary">' \
        'manager</span>' in page
    assert as_admin.post(f"/users/{user.id}/delete").status_code == 302
    with app.app_context():
        assert db.session.execute(db.select(GroupMember)).first() is None
        assert db.session.get(Group, group_id).name == "lab"


def test_the_administrator_is_in_no_group(app, as_admin):
    group_id = make_group(app, "lab")
    response = as_admin.post(f"/groups/{group_id}/members", {"usernames": "admin"})
    assert response.status_code == 400
    assert "The administrator is in no group" in response.get_data(as_text=True)
