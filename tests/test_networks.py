"""Networks: every host's libvirt networks listed and driven, NAT networks made by
LouCloud (overlaps refused), fixed addresses given to VMs on them and given back, the
administrator's chosen address checked; on libvirt's test driver."""
from __future__ import annotations

import json

import pytest

from loucloud.extensions import db
from loucloud.models import VM, Host, Template
from loucloud.services import FieldError
from loucloud.services import networks as network_service
from loucloud.services import templates as template_service
from loucloud.services.vms import create as vm_create
from loucloud.services.vms import lifecycle
from tests.conftest import Client
from tests.factories import make_catalog, make_user, make_vm


@pytest.fixture
def lab_net(app, test_host, test_host2):
    """Hosts h1 and h2 with the image and the template "small"; a LouCloud NAT network
    "lab" (10.20.0.0/29: addresses .2 to .6) on both; a template "on-lab" on it."""
    with app.app_context():
        make_user("admin", is_admin=True)
        make_user("alice", max_vms=10, max_vcpus=20, max_memory_mib=100000)
        small = make_catalog(("h1", test_host), ("h2", test_host2))
        hosts = db.session.execute(db.select(Host).order_by(Host.name)).scalars().all()
        results = network_service.create_network("lab", "10.20.0.0/29", hosts)
        assert [error for _, error in results] == [None, None]
        template = template_service.create_template(
            "on-lab", template_service.Sizes(1, 256, 2), small.image_id,
            network=template_service.Network("network", "lab"))
        return template.id


def _host_networks(app):
    with app.app_context():
        return {hn.host.name: {n.name: n for n in hn.networks}
                for hn in network_service.list_host_networks()}


def test_a_network_is_made_on_every_host_started_and_managed(app, lab_net):
    nets = _host_networks(app)
    for host in ("h1", "h2"):
        lab = nets[host]["lab"]
        assert lab.active and lab.autostart and lab.desc.managed and lab.desc.mode == "nat"
        assert (lab.desc.ipv4().dhcp_start, lab.desc.ipv4().dhcp_end) == ("10.20.0.2",
                                                                           "10.20.0.6")
        assert not nets[host]["default"].desc.managed


@pytest.mark.parametrize("name, subnet, field, why", [
    ("lab", "10.30.0.0/24", "name", "has a network named lab already"),
    ("other", "10.20.0.0/24", "subnet", "overlaps lab"),
    ("other", "10.20.0.0/28", "subnet", "overlaps lab"),
    ("other", "8.8.8.0/24", "subnet", "private network"),
    ("other", "10.0.0.0/8", "subnet", "/16 to /29"),
    ("other", "10.1.0.1/24", "subnet", "has host bits set"),
    ("other", "banana", "subnet", "IPv4 network"),
    ("a b", "10.40.0.0/24", "name", "Use 1 to 32"),
    ("x" * 33, "10.40.0.0/24", "name", "Use 1 to 32"),
])
def test_bad_networks_are_refused_and_nothing_is_made(app, lab_net, name, subnet, field, why):
    with app.app_context():
        hosts = db.session.execute(db.select(Host)).scalars().all()
        with pytest.raises(FieldError) as info:
            network_service.create_network(name, subnet, hosts)
    assert why in str(info.value) and info.value.field == field
    assert set(_host_networks(app)["h1"]) == {"default", "lab"}


def test_vms_get_distinct_fixed_addresses_and_give_them_back(app, lab_net):
    with app.app_context():
        alice_id = db.session.execute(db.select(User_.id).filter_by(username="alice")).scalar()
        first = make_vm(alice_id, "a", lab_net, host_id=1)
        second = make_vm(alice_id, "b", lab_net, host_id=1)
    assert {first.ip_address, second.ip_address} == {"10.20.0.2", "10.20.0.3"}
    assert first.network == "lab" and first.nic_kind == "network"
    hosts = _host_networks(app)["h1"]["lab"].desc.ipv4().hosts
    assert {(h.mac, h.ip) for h in hosts} == {(first.mac, first.ip_address),
                                             (second.mac, second.ip_address)}
    with app.app_context():
        lifecycle.delete_vm(db.session.get(VM, first.id))
        assert {h.ip for h in _host_networks(app)["h1"]["lab"].desc.ipv4().hosts} == \
            {second.ip_address}
        third = make_vm(alice_id, "c", lab_net, host_id=1)
    assert third.ip_address == first.ip_address     # the address was given back


def test_the_range_runs_out_with_a_clear_refusal_and_nothing_left(app, lab_net):
    with app.app_context():
        alice = db.session.execute(db.select(User_).filter_by(username="alice")).scalar_one()
        for i in range(5):
            make_vm(alice.id, f"vm{i}", lab_net, host_id=1, start=False)
        template = db.session.get(Template, lab_net)
        with pytest.raises(Exception) as info:
            vm_create.create_vm(alice, "one-too-many", template,
                                db.session.get(Host, 1), start=False)
        assert "no free address left" in str(info.value)
        assert db.session.execute(db.select(db.func.count(VM.id))).scalar() == 5


@pytest.mark.parametrize("ip, why", [("10.20.0.7", "outside lab's range"),
                                     ("10.20.0.1", "outside lab's range"),
                                     ("10.99.0.3", "outside lab's range"),
                                     ("banana", "IPv4 address"),
                                     ("taken", "in use on lab")])
def test_a_chosen_address_must_be_free_and_in_the_range(app, lab_net, ip, why):
    with app.app_context():
        alice = db.session.execute(db.select(User_).filter_by(username="alice")).scalar_one()
        used = make_vm(alice.id, "used", lab_net, host_id=1, start=False)
        template, host = db.session.get(Template, lab_net), db.session.get(Host, 1)
        with pytest.raises(FieldError) as info:
            vm_create.create_vm(alice, "chosen", template, host, start=False,
                                ip_address=used.ip_address if ip == "taken" else ip)
        assert why in str(info.value) and info.value.field == "ip_address"
        assert db.session.execute(db.select(db.func.count(VM.id))).scalar() == 1
    assert len(_host_networks(app)["h1"]["lab"].desc.ipv4().hosts) == 1


def test_the_administrator_gives_a_chosen_free_address(app, lab_net):
    admin = Client(app)
    admin.login("admin")
    response = admin.post("/vms/new", {"name": "pinned", "template_id": lab_net,
                                       "host_id": 2, "ip_address": "10.20.0.5"})
    assert response.status_code == 302, response.get_data(as_text=True)
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert 'data-addresses="10.20.0.5"' in page and "network lab" in page


def test_placement_skips_hosts_where_the_network_is_stopped(app, lab_net):
    with app.app_context():
        h1 = db.session.execute(db.select(Host).filter_by(name="h1")).scalar_one()
        network_service.network_action(h1, "lab", "stop")
        alice = db.session.execute(db.select(User_).filter_by(username="alice")).scalar_one()
        h1_id = h1.id
        vm = make_vm(alice.id, "placed", lab_net)
    assert vm.host_id != h1_id and vm.ip_address == "10.20.0.2"


def test_addresses_are_in_the_list_json_and_cli(app, lab_net, runner_vms_list):
    with app.app_context():
        alice = db.session.execute(db.select(User_).filter_by(username="alice")).scalar_one()
        vm = make_vm(alice.id, "listed", lab_net, host_id=1)
    owner = Client(app)
    owner.login("alice")
    assert vm.ip_address in owner.get("/").get_data(as_text=True)
    states = owner.get(f"/vms/states.json?ids={vm.id}").get_json()
    assert states[str(vm.id)]["addresses"] == [vm.ip_address]
    assert owner.get(f"/vms/{vm.id}.json").get_json()["addresses"] == [vm.ip_address]
    [row] = json.loads(runner_vms_list())
    assert row["addresses"] == [vm.ip_address] and row["network"] == "lab"


def test_network_page_lists_every_host_and_acts(app, lab_net):
    admin = Client(app)
    admin.login("admin")
    page = admin.get("/networks/").get_data(as_text=True)
    assert page.count('data-network="lab"') == 2 and 'data-host="h2"' in page
    response = admin.post("/networks/action", {"host_id": 1, "name": "lab", "action": "stop"})
    assert response.status_code == 302
    assert not _host_networks(app)["h1"]["lab"].active
    bad = admin.post("/networks/new", {"name": "x", "subnet": "10.20.0.0/24", "hosts": [1]})
    assert bad.status_code == 400 and "overlaps lab" in bad.get_data(as_text=True)


@pytest.fixture
def runner_vms_list(app):
    def run() -> str:
        result = app.test_cli_runner().invoke(args=["vms", "list", "--json"])
        assert result.exit_code == 0, result.output
        return result.output
    return run


from loucloud.models import User as User_  # noqa: E402


def test_an_address_or_mac_with_an_entry_already_is_refused_as_such(app, lab_net):
    """libvirt says "there is an existing dhcp host entry": that is AlreadyExists (what
    lets concurrent creates' loser take the next address, and a move's late reservation
    refuse plainly), not an invalid operation."""
    from loucloud.services.hypervisors import hypervisor
    from loucloud.virt import AlreadyExists

    with app.app_context():
        hv = hypervisor(db.session.get(Host, 1))
        hv.reserve_address("lab", "52:54:00:00:00:01", "10.20.0.4")
        with pytest.raises(AlreadyExists):
            hv.reserve_address("lab", "52:54:00:00:00:02", "10.20.0.4")   # same address
        with pytest.raises(AlreadyExists):
            hv.reserve_address("lab", "52:54:00:00:00:01", "10.20.0.5")   # same card
