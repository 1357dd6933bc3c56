"""Smoke test of the host lab: the lab hosts are real, independent libvirtd hosts that
run QEMU guests, and the fault injection (stop/kill/freeze/link down) behaves."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.lab import HostLab, LabHost

libvirt = pytest.importorskip("libvirt")
libvirt.registerErrorHandler(lambda *_a: None, None)

pytestmark = pytest.mark.system

RFB_GREETING = b"RFB 003.008\n"


@dataclass
class SmokeDomain:
    host: LabHost
    name: str
    virt_type: str  # "kvm" or "qemu"
    image: str


def open_with_timeout(uri: str, timeout: float) -> tuple[threading.Thread, dict[str, Any]]:
    """Run libvirt.open(uri) in a thread and wait at most ``timeout`` seconds.

    Returns the thread and a dict that gets "conn" or "error" once open() returns."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["conn"] = libvirt.open(uri)
        except libvirt.libvirtError as exc:
            result["error"] = exc

    t = threading.Thread(target=target, name=f"open {uri}", daemon=True)
    t.start()
    t.join(timeout)
    return t, result


def finish_open(t: threading.Thread, result: dict[str, Any], timeout: float = 60) -> None:
    """Wait for a pending open_with_timeout() and close whatever it opened."""
    t.join(timeout)
    assert not t.is_alive(), "libvirt.open() still hangs"
    conn = result.pop("conn", None)
    if conn is not None:
        conn.close()


@contextlib.contextmanager
def connect(host: LabHost) -> Iterator[Any]:
    conn = libvirt.open(host.uri)
    try:
        yield conn
    finally:
        conn.close()


def answers(host: LabHost, timeout: float = 10) -> bool:
    t, result = open_with_timeout(host.uri, timeout)
    if t.is_alive():
        finish_open(t, result)
        return False
    conn = result.get("conn")
    if conn is None:
        return False
    try:
        conn.getLibVersion()
        return True
    finally:
        conn.close()


def domain_xml(name: str, virt_type: str, image: str, listen: str) -> str:
    return f"""<domain type='{virt_type}'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{image}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <graphics type='vnc' autoport='yes'>
      <listen type='address' address='{listen}'/>
    </graphics>
  </devices>
</domain>
"""


def vnc_port(dom: Any) -> int:
    import xml.etree.ElementTree as ET

    g = ET.fromstring(dom.XMLDesc(0)).find("./devices/graphics[@type='vnc']")
    assert g is not None
    return int(g.get("port", "-1"))


def read_vnc_greeting(address: str, port: int) -> bytes:
    with socket.create_connection((address, port), timeout=5) as s:
        s.settimeout(5)
        data = b""
        while len(data) < len(RFB_GREETING):
            chunk = s.recv(len(RFB_GREETING) - len(data))
            if not chunk:
                break
            data += chunk
        return data


def host_uuid(conn: Any) -> str:
    import xml.etree.ElementTree as ET

    return ET.fromstring(conn.getCapabilities()).findtext("./host/uuid") or ""


def qemu_pid(host: LabHost, name: str) -> int:
    return int(host.host_path(f"/run/libvirt/qemu/{name}.pid").read_text().strip())


def start_smoke_domain(lab: HostLab, host: LabHost, conn: Any) -> SmokeDomain:
    name = f"smoke-{host.name}"
    image = lab.make_image(host, f"{name}.qcow2", 64 * 1024 * 1024)
    kvm_offered = "<domain type='kvm'" in conn.getCapabilities()
    types = (["kvm"] if kvm_offered and HostLab.kvm_usable() else []) + ["qemu"]
    last: Exception | None = None
    for virt_type in types:
        dom = conn.defineXML(domain_xml(name, virt_type, image, host.address))
        try:
            dom.create()
            return SmokeDomain(host, name, virt_type, image)
        except libvirt.libvirtError as exc:  # e.g. KVM offered but unusable: try TCG
            last = exc
            dom.undefine()
    raise AssertionError(f"cannot start a domain on {host.name}: {last}")


@pytest.fixture(scope="module")
def domains(lab: HostLab) -> Iterator[dict[str, SmokeDomain]]:
    started: dict[str, SmokeDomain] = {}
    try:
        for host in lab.hosts:
            with connect(host) as conn:
                started[host.name] = start_smoke_domain(lab, host, conn)
        yield started
    finally:
        for sd in started.values():
            with contextlib.suppress(Exception), connect(sd.host) as conn:
                dom = conn.lookupByName(sd.name)
                with contextlib.suppress(libvirt.libvirtError):
                    dom.destroy()
                dom.undefine()


def test_domains_run_with_vnc(lab: HostLab, domains: dict[str, SmokeDomain]) -> None:
    assert len(lab.hosts) == 2
    for host in lab.hosts:
        sd = domains[host.name]
        with connect(host) as conn:
            assert conn.getHostname() == host.hostname
            dom = conn.lookupByName(sd.name)
            assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
            assert dom.XMLDesc(0).startswith(f"<domain type='{sd.virt_type}'")
            port = vnc_port(dom)
        assert port >= 5900, f"no VNC port on {host.name}"
        assert read_vnc_greeting(host.address, port) == RFB_GREETING
        # the image lives in the host's private /var/lib/libvirt, seen from here via host_path
        assert host.host_path(sd.image).is_file()
        assert host.host_path(sd.image).parent == host.root / "lib" / "images"


def test_hosts_are_independent(lab: HostLab, domains: dict[str, SmokeDomain]) -> None:
    h1, h2 = lab.hosts
    with connect(h1) as c1, connect(h2) as c2:
        names1 = {d.name() for d in c1.listAllDomains(0)}
        names2 = {d.name() for d in c2.listAllDomains(0)}
        assert names1 == {"smoke-h1"}
        assert names2 == {"smoke-h2"}
        with pytest.raises(libvirt.libvirtError):
            c2.lookupByName("smoke-h1")
        # only h1 has the isolated "default" network, and it has no dnsmasq (no <ip>)
        assert [n.name() for n in c1.listAllNetworks(0)] == ["default"]
        assert c1.networkLookupByName("default").isActive()
        assert c2.listAllNetworks(0) == []
        assert host_uuid(c1) != host_uuid(c2)
        assert c1.getHostname() != c2.getHostname()
    assert lab.libvirtd_pid(h1) != lab.libvirtd_pid(h2)


def test_stop_and_start_libvirtd(lab: HostLab, domains: dict[str, SmokeDomain]) -> None:
    h1, h2 = lab.hosts
    sd = domains["h1"]
    pid_before = qemu_pid(h1, sd.name)
    old_libvirtd = lab.libvirtd_pid(h1)
    lab.stop_libvirtd(h1)
    try:
        with pytest.raises(libvirt.libvirtError):
            libvirt.open(h1.uri)
        assert answers(h2)
        # the guest keeps running without its libvirtd, VNC included
        assert qemu_pid(h1, sd.name) == pid_before
        with connect(h2) as c2:
            assert c2.lookupByName("smoke-h2").isActive()
    finally:
        lab.start_libvirtd(h1)
    assert lab.libvirtd_pid(h1) != old_libvirtd
    with connect(h1) as c1:
        dom = c1.lookupByName(sd.name)
        assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        port = vnc_port(dom)
        assert c1.networkLookupByName("default").isActive()
    assert qemu_pid(h1, sd.name) == pid_before
    assert read_vnc_greeting(h1.address, port) == RFB_GREETING


def test_kill_libvirtd(lab: HostLab, domains: dict[str, SmokeDomain]) -> None:
    h2 = lab.hosts[1]
    sd = domains["h2"]
    pid_before = qemu_pid(h2, sd.name)
    lab.kill_libvirtd(h2)
    try:
        assert not answers(h2, timeout=5)
    finally:
        lab.start_libvirtd(h2)
    with connect(h2) as c2:
        assert c2.lookupByName(sd.name).state()[0] == libvirt.VIR_DOMAIN_RUNNING
    assert qemu_pid(h2, sd.name) == pid_before


def test_freeze_and_thaw(lab: HostLab, domains: dict[str, SmokeDomain]) -> None:
    h1, h2 = lab.hosts
    lab.freeze(h1)
    try:
        t, result = open_with_timeout(h1.uri, 2.0)
        assert t.is_alive(), f"open() of a frozen libvirtd returned: {result}"
        assert answers(h2)
    finally:
        lab.thaw(h1)
    finish_open(t, result)
    assert answers(h1)


def test_link_down_and_up(lab: HostLab, domains: dict[str, SmokeDomain]) -> None:
    h1, h2 = lab.hosts
    lab.link_down(h2)
    try:
        t0 = time.monotonic()
        t, result = open_with_timeout(h2.uri, 3.0)
        # either it fails (no route to host) or it hangs
        assert t.is_alive() or "error" in result, f"open() over a downed link worked: {result}"
        assert answers(h1)
    finally:
        lab.link_up(h2)
    finish_open(t, result)
    assert time.monotonic() - t0 < 60
    assert answers(h2)
    with connect(h2) as c2:
        assert c2.lookupByName("smoke-h2").isActive()
