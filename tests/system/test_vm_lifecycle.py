"""The whole VM lifecycle on two real libvirtd + QEMU hosts, through the web app."""
from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
import socket
import time
from pathlib import Path

import libvirt
import pytest

from loucloud.extensions import db
from loucloud.models import VM, Host, Template, User
from loucloud.services import images, templates as template_service
from loucloud.virt import xml
from tests.conftest import Client
from tests.factories import make_user

libvirt.registerErrorHandler(lambda *a: None, None)
IMAGE = "lc-base.qcow2"


@pytest.fixture(scope="module")
def lab_images(lab):
    """A small blank qcow2 image at the same path on both hosts."""
    paths = {lab.host(i).name: lab.make_image(lab.host(i), IMAGE, 64 * 1024 * 1024)
             for i in (1, 2)}
    assert len(set(paths.values())) == 1
    return paths["h1"]


@pytest.fixture
def world(app, lab, lab_images):
    """admin + alice, both lab hosts, the image and a template "tiny"."""
    with app.app_context():
        make_user("admin", is_admin=True, max_vms=50, max_vcpus=100, max_disk_gib=1000)
        make_user("alice", max_memory_mib=8 * 1024 * 1024, max_vcpus=1000, max_vms=50,
                  max_disk_gib=1000)
    admin = Client(app)
    admin.login("admin")
    for host in (lab.host(1), lab.host(2)):
        assert admin.post("/hosts/new", {"name": host.name, "uri": host.uri}).status_code == 302
    response = admin.post("/images/new", {"name": "base", "path": lab_images,
                                          "os_type": "linux"})
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        image = images.db.session.execute(db.select(images.Image)).scalar_one()
        template = template_service.create_template("tiny", template_service.Sizes(1, 128, 1), image)
        ids = {"template": template.id, "image": image.id,
               "servers": {s.name: s.id for s in db.session.execute(db.select(Host)).scalars()}}
    alice = Client(app)
    alice.login("alice")
    yield {"admin": admin, "alice": alice, **ids}
    # Leave the hosts clean for the next test, whatever happened.
    with app.app_context():
        for vm in db.session.execute(db.select(VM)).scalars().all():
            admin.post(f"/vms/{vm.id}/delete")


def libvirt_domain(host, uuid):
    conn = libvirt.open(host.uri)
    try:
        return conn.lookupByUUIDString(uuid), conn
    except libvirt.libvirtError:
        conn.close()
        return None, None


def rfb_greeting(address: str, port: int) -> bytes:
    with socket.create_connection((address, port), timeout=5) as s:
        return s.recv(12)


def vm_row(app, name) -> VM:
    with app.app_context():
        vm = db.session.execute(db.select(VM).filter_by(name=name)).scalar_one()
        db.session.expunge(vm)
        return vm


def act(client, vm_id, action):
    response = client.post(f"/vms/{vm_id}/{action}", headers={"Accept": "application/json"})
    assert response.status_code == 200, (action, response.get_data(as_text=True))


def state(client, vm_id):
    return json.loads(client.get(f"/vms/{vm_id}.json").get_data(as_text=True))["state"]


def wait_state(client, vm_id, wanted, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if state(client, vm_id) == wanted:
            return
        time.sleep(0.2)
    raise AssertionError(f"VM {vm_id} not {wanted} after {timeout} s: {state(client, vm_id)}")


@pytest.mark.parametrize("host_index", [1, 2])
def test_full_lifecycle_on_each_host(app, lab, world, host_index):
    host = lab.host(host_index)
    alice = world["alice"]
    image_file = host.host_path(world_image_path(app))
    image_digest = hashlib.sha256(image_file.read_bytes()).hexdigest()

    # alice's VM, placed on this host (the user's form has no host choice).
    with app.app_context():
        from loucloud.services.vms import create as vm_create
        owner = db.session.execute(db.select(User).filter_by(username="alice")).scalar_one()
        server = db.session.get(Host, world["servers"][host.name])
        template = db.session.get(Template, world["template"])
        vm_create.create_vm(owner, f"life-{host.name}", template, server)
    vm = vm_row(app, f"life-{host.name}")
    assert state(alice, vm.id) == "running"

    dom, conn = libvirt_domain(host, vm.uuid)
    try:
        assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        desc = xml.parse_domain(dom.XMLDesc(0))
        assert desc.vnc_port and desc.vnc_listen == host.address  # "auto": the host's address
        assert desc.domain_type == ("kvm" if lab.kvm_usable() else "qemu")
        assert rfb_greeting(desc.vnc_listen, desc.vnc_port).startswith(b"RFB 003.")
        if host.has_default_network:
            assert desc.networks == ("default",) and desc.macs == (vm.mac,)
        else:
            assert desc.networks == () and vm.mac is None
        overlay = host.host_path(vm.volume_path)
        assert overlay.exists()
    finally:
        conn.close()

    page = alice.get(f"/vms/{vm.id}").get_data(as_text=True)
    assert f"{desc.vnc_listen}:{desc.vnc_port}" in page

    for action, expected in [("reboot", "running"), ("reset", "running"), ("pause", "paused"),
                             ("resume", "running"), ("shutdown", "running"),
                             ("poweroff", "shut off"), ("start", "running")]:
        act(alice, vm.id, action)
        wait_state(alice, vm.id, expected)

    response = alice.post(f"/vms/{vm.id}/delete")
    assert response.status_code == 302
    dom, conn = libvirt_domain(host, vm.uuid)
    assert dom is None
    assert not overlay.exists()
    assert hashlib.sha256(image_file.read_bytes()).hexdigest() == image_digest


def world_image_path(app) -> str:
    with app.app_context():
        return db.session.execute(db.select(images.Image.path)).scalar_one()


def _nothing_left(app, lab, before_domains):
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(VM.id))).scalar() == 0
    for i in (1, 2):
        host = lab.host(i)
        conn = libvirt.open(host.uri)
        try:
            assert {d.UUIDString() for d in conn.listAllDomains(0)} == before_domains[host.name]
            pool = conn.storagePoolLookupByName("loucloud")
            pool.refresh(0)
            assert pool.listVolumes() == []
        finally:
            conn.close()


def _domains(lab):
    out = {}
    for i in (1, 2):
        conn = libvirt.open(lab.host(i).uri)
        out[lab.host(i).name] = {d.UUIDString() for d in conn.listAllDomains(0)}
        conn.close()
    return out


@pytest.mark.parametrize("vcpus,memory_mib,step", [
    (256, 128, "define"),            # more CPUs than the machine type allows: define fails
    (1, 4 * 1024 * 1024, "start"),   # 4 TiB of RAM: QEMU cannot start
])
def test_a_failed_create_leaves_nothing_behind(app, lab, world, vcpus, memory_mib, step):
    alice = world["alice"]
    # Make sure the pool exists, so that an empty pool afterwards means something.
    with app.app_context():
        image = db.session.get(images.Image, world["image"])
        big = template_service.create_template(f"fails-at-{step}",
                                          template_service.Sizes(vcpus, memory_mib, 1), image)
        big_id = big.id
    before = _domains(lab)
    usage_before = _usage(app)
    response = alice.post("/vms/new", {"name": f"doomed-{step}", "template_id": big_id,
                                       "host_id": 0, "start": "y"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "could not create" in page
    assert ("machine type limit" in page) if step == "define" else ("memory" in page)
    _nothing_left(app, lab, before)
    assert _usage(app) == usage_before


def _usage(app):
    from loucloud.services.users import quota_usage
    with app.app_context():
        return quota_usage(db.session.execute(
            db.select(User).filter_by(username="alice")).scalar_one()).used


def test_creation_time_does_not_grow_with_the_image(app, lab, world, capsys):
    """A 1 GiB and a 50 GiB sparse raw image: the overlay is made in the same time."""
    host = lab.host(1)
    admin = world["admin"]
    templates, paths = {}, {}
    for size_gib in (1, 50):
        paths[size_gib] = lab.make_image(host, f"sparse-{size_gib}g.raw", size_gib * 1024 ** 3,
                                         fmt="raw")
        admin.post("/images/new", {"name": f"raw{size_gib}", "path": paths[size_gib],
                                   "os_type": "linux"})
        with app.app_context():
            image = db.session.execute(db.select(images.Image).filter_by(
                name=f"raw{size_gib}")).scalar_one()
            templates[size_gib] = template_service.create_template(
                f"t{size_gib}", template_service.Sizes(1, 128, size_gib), image).id
    samples = {1: [], 50: []}
    # Interleaved, and each VM forced off once measured: a blank guest keeps SeaBIOS
    # busy, which would slow whatever is measured after it on a small machine.
    for n in range(3):
        for size_gib in (1, 50):
            start = time.monotonic()
            response = admin.post("/vms/new", {"name": f"s{size_gib}-{n}", "template_id":
                                               templates[size_gib],
                                               "host_id": world["servers"]["h1"],
                                               "start": "y"})
            samples[size_gib].append(time.monotonic() - start)
            assert response.status_code == 302, response.get_data(as_text=True)
            [vm] = _vms_named(app, f"s{size_gib}-{n}")
            # Nothing of the image was copied: the overlay holds only qcow2 metadata.
            assert Path(host.host_path(vm.volume_path)).stat().st_blocks * 512 < 4 * 1024 ** 2
            assert admin.post(f"/vms/{vm.id}/poweroff").status_code == 302
    for size_gib in (1, 50):
        assert Path(host.host_path(paths[size_gib])).stat().st_blocks * 512 < 1024 ** 2
    times = {size: sorted(values)[1] for size, values in samples.items()}
    with capsys.disabled():
        print(f"\n  create+start, median of 3: 1 GiB image {times[1]:.3f} s, "
              f"50 GiB image {times[50]:.3f} s (ratio {times[50] / times[1]:.2f})")


def _vms_named(app, prefix):
    with app.app_context():
        rows = db.session.execute(db.select(VM).where(VM.name.startswith(prefix))).scalars().all()
        for row in rows:
            db.session.expunge(row)
        return rows



def test_a_uefi_image_boots_with_ovmf_and_leaves_nothing(app, lab, world):
    """An image marked UEFI: its VM gets libvirt's EFI firmware (OVMF, with an NVRAM
    file of its own), runs, and its delete takes the NVRAM file away too."""
    admin = world["admin"]
    response = admin.post("/images/new", {"name": "efi", "path": world_image_path(app),
                                          "os_type": "linux", "firmware": "uefi"})
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        image = db.session.execute(db.select(images.Image).filter_by(name="efi")).scalar_one()
        template_id = template_service.create_template(
            "efi", template_service.Sizes(1, 128, 1), image).id
    response = world["alice"].post("/vms/new", {"name": "efi-1", "template_id": template_id,
                                                "host_id": 0, "start": "y"})
    assert response.status_code == 302, response.get_data(as_text=True)
    vm = vm_row(app, "efi-1")
    host = lab.host(1) if vm.host_id == world["servers"]["h1"] else lab.host(2)
    dom, conn = libvirt_domain(host, vm.uuid)
    try:
        text = dom.XMLDesc(0)
        assert xml.parse_domain(text).firmware == "uefi" and dom.isActive()
        nvram = ET.fromstring(text).findtext("os/nvram")
    finally:
        conn.close()
    assert nvram and host.host_path(nvram).exists()
    assert state(world["alice"], vm.id) == "running"
    assert admin.post(f"/vms/{vm.id}/delete").status_code == 302
    assert not host.host_path(nvram).exists()
