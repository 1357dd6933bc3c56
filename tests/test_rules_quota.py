"""The quota reservation and the names of VMs (services/vms/create.py: _reserve,
check_name), as a user meets them on the "New VM" page and the command line."""
from __future__ import annotations

import pytest

from loucloud.extensions import db
from loucloud.models import VM
from tests.conftest import Client
from tests.factories import make_catalog, make_user

FULL = ("Over quota: VMs 2 in use + 1 would exceed 2; vCPUs 2 in use + 1 would exceed 2; "
        "memory (MiB) 1024 in use + 512 would exceed 1024; "
        "disk (GiB) 4 in use + 2 would exceed 4.")


@pytest.fixture
def template(app, test_host):
    """The template "small": 1 vCPU, 512 MiB, 2 GiB."""
    with app.app_context():
        return make_catalog(("h1", test_host))


def create(client, name: str, template_id: int):
    return client.post("/vms/new", {"name": name, "template_id": template_id, "host_id": 0})


def names(app) -> list[tuple[str, str]]:
    with app.app_context():
        return [(vm.owner.username, vm.name) for vm in db.session.execute(
            db.select(VM).order_by(VM.id)).scalars()]


def test_a_quota_can_be_used_up_exactly_and_then_says_what_is_over(app, template):
    """Two small VMs fill this quota to the last unit of each kind; the third is refused
    with every exhausted kind named, and nothing of it is made."""
    with app.app_context():
        make_user("carol", max_vms=2, max_vcpus=2, max_memory_mib=1024, max_disk_gib=4)
    carol = Client(app)
    carol.login("carol")
    assert create(carol, "one", template.id).status_code == 302
    assert create(carol, "two", template.id).status_code == 302
    response = create(carol, "three", template.id)
    assert response.status_code == 409
    assert FULL in response.get_data(as_text=True)
    assert names(app) == [("carol", "one"), ("carol", "two")]


@pytest.mark.parametrize("quota,message", [
    ({"max_vms": 3, "max_vcpus": 2}, "Over quota: vCPUs 2 in use + 1 would exceed 2."),
    ({"max_vms": 3, "max_memory_mib": 1100},
     "Over quota: memory (MiB) 1024 in use + 512 would exceed 1100."),
    ({"max_vms": 3, "max_disk_gib": 5}, "Over quota: disk (GiB) 4 in use + 2 would exceed 5."),
])
def test_each_kind_of_quota_is_counted_on_its_own(app, template, quota, message):
    with app.app_context():
        make_user("carol", **quota)
    carol = Client(app)
    carol.login("carol")
    assert [create(carol, n, template.id).status_code for n in ("a", "b", "c")] == \
        [302, 302, 409]
    assert message in create(carol, "d", template.id).get_data(as_text=True)


def test_names_are_unique_per_owner_only(app, template, user, other_user):
    alice, bob = Client(app), Client(app)
    alice.login("alice")
    bob.login("bob")
    assert create(alice, "web", template.id).status_code == 302
    assert create(alice, "db", template.id).status_code == 302  # another name: fine
    assert create(bob, "web", template.id).status_code == 302   # another owner: fine
    response = create(alice, "web", template.id)
    assert response.status_code == 400
    assert "You already have a VM named web." in response.get_data(as_text=True)
    assert names(app) == [("alice", "web"), ("alice", "db"), ("bob", "web")]


def test_the_reserved_vm_is_what_the_template_says(app, template, user):
    alice = Client(app)
    alice.login("alice")
    assert create(alice, "sized", template.id).status_code == 302
    with app.app_context():
        vm = db.session.execute(db.select(VM)).scalar_one()
        assert (vm.vcpus, vm.memory_mib, vm.disk_gib) == (1, 512, 2)
        assert (vm.template_id, vm.image_id, vm.owner_id) == \
            (template.id, template.image_id, user.id)
        assert vm.domain_name == f"lc-{vm.uuid}" and vm.volume_name == f"lc-{vm.uuid}.qcow2"
        assert vm.status == VM.READY


@pytest.mark.parametrize("name,stored", [("  padded-1  ", "padded-1"), ("x" * 64, "x" * 64),
                                         ("A.b_c-9", "A.b_c-9"), ("wéb", "wéb"),
                                         ("实验机-1", "实验机-1"), ("ＶＭ１", "VM1")])
def test_the_command_line_takes_names_up_to_the_rules(app, template, user, name, stored):
    result = app.test_cli_runner().invoke(
        args=["vms", "create", "--owner=alice", "--template=small", "--no-start", "--", name])
    assert result.exit_code == 0, result.output
    assert names(app) == [("alice", stored)]


@pytest.mark.parametrize("name", ["a b", "x" * 65, "", "   ", "a😀", "a/b", "<x>"],
                         ids=["space", "65-long", "empty", "blank", "symbol", "slash", "tag"])
def test_the_command_line_refuses_other_names_and_says_the_rule(app, template, user, name):
    result = app.test_cli_runner().invoke(
        args=["vms", "create", "--owner=alice", "--template=small", "--no-start", "--", name])
    assert result.exit_code == 1
    assert result.stderr == \
        "error: Use 1 to 64 letters (of any language), digits, '-', '_' or '.'.\n"
    assert names(app) == []
