"""Small factories for test objects."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from loucloud.extensions import db
from loucloud.models import Host, User
from loucloud.services.passwords import hash_password

DEFAULT_PASSWORD = "correct horse battery"


def make_user(username: str, password: str = DEFAULT_PASSWORD, *, is_admin: bool = False,
              active: bool = True, **quota) -> User:
    user = User(username=username, full_name=username.title(), is_admin=is_admin,
                active=active, password_hash=hash_password(password),
                max_vms=quota.get("max_vms", 5), max_vcpus=quota.get("max_vcpus", 8),
                max_memory_mib=quota.get("max_memory_mib", 8192),
                max_disk_gib=quota.get("max_disk_gib", 100))
    return _saved(user)


def make_server(name: str, uri: str, **fields) -> Host:
    host = Host(name=name, uri=uri, hostname=fields.pop("hostname", name),
                    cpus=fields.pop("cpus", 4), memory_mib=fields.pop("memory_mib", 8192),
                    **fields)
    return _saved(host)


def make_catalog(*hosts: tuple[str, str], image_path: str = "/var/lib/images/base.qcow2",
                 vcpus: int = 1, memory_mib: int = 512, disk_gib: int = 2):
    """Hosts (name, uri), an image found on them and a template, through the services.
    Returns the template (detached)."""
    from loucloud.services import images, templates as template_service
    from loucloud.services import hosts as host_service

    for name, uri in hosts:
        host_service.add_host(name, uri)
    image = images.add_image("base", image_path, "linux")
    template = template_service.create_template(
        "small", template_service.Sizes(vcpus, memory_mib, disk_gib), image)
    return _saved(template)


def make_vm(owner_id: int, name: str, template_id: int, *, start: bool = True,
            host_id: int | None = None):
    """A VM made by the real create service."""
    from loucloud.models import Template
    from loucloud.services.vms import create as vms

    owner = db.session.get(User, owner_id)
    template = db.session.get(Template, template_id)
    host = db.session.get(Host, host_id) if host_id else None
    return _saved(vms.create_vm(owner, name, template, host, start=start))


def give_screen(app, uri: str, uuid: str, port: int = 5907) -> None:
    """Restart a VM's test-driver domain with a VNC server on a fixed ``port``. The test
    driver gives LouCloud's autoport graphics no port (the VM "has no screen": no
    console token); it keeps a fixed one, so that the token logic can go all the way."""
    from loucloud.services.hypervisors import pool

    def redefine(conn):
        dom = conn.lookupByUUIDString(uuid)
        root = ET.fromstring(dom.XMLDesc(2))  # VIR_DOMAIN_XML_INACTIVE
        graphics = root.find("devices/graphics[@type='vnc']")
        graphics.set("port", str(port))
        graphics.set("autoport", "no")
        if dom.isActive():
            dom.destroy()
        conn.defineXML(ET.tostring(root, encoding="unicode"))
        conn.lookupByUUIDString(uuid).create()
    with app.app_context():
        pool().call(uri, redefine, timeout=10)


def cut_off_host(app, host_id: int, folder: Path) -> str:
    """Point the host's record at a socket no libvirtd listens on (the host gone, for
    LouCloud). Returns its URI as it was."""
    from loucloud.extensions import db
    from loucloud.models import Host

    with app.app_context():
        host = db.session.get(Host, host_id)
        uri, host.uri = host.uri, f"qemu+unix:///system?socket={folder / 'gone.sock'}"
        db.session.commit()
    return uri


def make_stored_image(folder: Path, name: str = "disk"):
    """An uploaded image LouCloud keeps in its image store (``folder``/images, the
    tests' IMAGE_STORE): a small qcow2 file and its row."""
    from loucloud.models import Image
    from tests.support import imagefiles as files

    store = Path(folder) / "images"
    store.mkdir(exist_ok=True)
    src = files.qcow2(store / f"image-{name}.qcow2", 2 ** 20)
    return _saved(Image(name=name, path=str(src), format="qcow2", virtual_size=2 ** 20,
                        volume=src.name, file_size=src.stat().st_size,
                        sha256=files.sha256(src)))


def _saved(obj):
    """Commit, load every column and detach: the object stays readable in the test
    after its app context is gone."""
    db.session.add(obj)
    db.session.commit()
    db.session.refresh(obj)
    db.session.expunge(obj)
    return obj


def write_test_node(path: Path, *, cpus: int = 4,
                    memory_mib: int = 8192, pools: dict[str, str] | None = None,
                    networks: tuple[str, ...] = ("default",),
                    volumes: dict[str, list[tuple[str, int, str]]] | None = None) -> str:
    """Write a node description for libvirt's test driver and return its URI. Every
    connection to a node file is an independent in-memory hypervisor.

    ``pools`` maps pool names to target paths; ``volumes`` maps a pool name to
    (name, capacity in bytes, format) triples."""
    node = ET.Element("node")
    cpu = ET.SubElement(node, "cpu")
    for tag, value in (("mhz", "2000"), ("model", "x86_64"), ("nodes", "1"),
                       ("sockets", "1"), ("cores", str(cpus)), ("threads", "1")):
        ET.SubElement(cpu, tag).text = value
    ET.SubElement(node, "memory").text = str(memory_mib * 1024)
    for name in networks:
        net = ET.SubElement(node, "network")
        ET.SubElement(net, "name").text = name
        ET.SubElement(net, "bridge", name=f"br-{name}"[:15])
        ET.SubElement(net, "forward")
        ET.SubElement(net, "ip", address="192.168.122.1", netmask="255.255.255.0")
    for pool_name, target in (pools or {}).items():
        pool = ET.SubElement(node, "pool", type="dir")
        ET.SubElement(pool, "name").text = pool_name
        ET.SubElement(ET.SubElement(pool, "target"), "path").text = target
        for vol_name, capacity, fmt in (volumes or {}).get(pool_name, []):
            vol = ET.SubElement(pool, "volume", type="file")
            ET.SubElement(vol, "name").text = vol_name
            ET.SubElement(vol, "capacity", unit="bytes").text = str(capacity)
            ET.SubElement(vol, "allocation", unit="bytes").text = "0"
            ET.SubElement(ET.SubElement(vol, "target"), "format", type=fmt)
    path.write_text(ET.tostring(node, encoding="unicode"))
    return f"test://{path}"


def new_public_key(comment: str = "someone@laptop") -> str:
    """A fresh ed25519 public key line, as a .pub file holds it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public = Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{public.decode()} {comment}"
