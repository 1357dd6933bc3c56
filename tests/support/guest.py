"""Talking to the real guest from the tests: SSH from the lab host's network namespace
(the NAT network's bridge lives there), and its serial line through LouCloud's console
proxy (a websocket), logged in like a person at a terminal."""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

SITE = "http://127.0.0.1:5000"
SSH_OPTIONS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR"]


def boot_bound() -> float:
    """How long a boot may take: TCG (no usable KVM) is several times slower."""
    from tests.support.lab import HostLab
    return 90.0 if HostLab.kvm_usable() else 300.0


def wait_for(check: Callable[[], bool], seconds: float, what: str, every: float = 2.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise AssertionError(f"waited {seconds:g} s for {what}")


@dataclass
class SshKey:
    private: Path
    public: str


def make_ssh_key(directory: Path) -> SshKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = directory / "id_ed25519"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.OpenSSH,
                                          serialization.NoEncryption()))
    os.chmod(private, 0o600)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return SshKey(private, f"{public} tests@loucloud")


class Guest:
    """A guest on a lab host's network, reached with SSH as its login user."""

    def __init__(self, lab_host, address: str, key: SshKey, user: str = "debian"):
        self.netns, self.address, self.key, self.user = lab_host.netns, address, key, user

    def ssh(self, command: str, timeout: float = 60) -> str:
        argv = ["ip", "netns", "exec", self.netns, "ssh", "-i", str(self.key.private),
                *SSH_OPTIONS, f"{self.user}@{self.address}", command]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise AssertionError(f"ssh {command!r}: exit {done.returncode}: {done.stderr}")
        return done.stdout

    def answers(self) -> bool:
        try:
            self.ssh("true", timeout=15)
            return True
        except (AssertionError, subprocess.TimeoutExpired):
            return False

    def wait_for_ssh(self, seconds: float) -> None:
        """Until SSH lets us in and cloud-init has finished this boot (its final stage,
        which runs the boot jobs, ends after sshd starts). cloud-init writes its result
        in /run at the end; a shell loop waits for it (`cloud-init status --wait` would
        cost the booting guest another Python start, seconds under TCG)."""
        def settled() -> bool:
            try:
                self.ssh("until [ -e /run/cloud-init/result.json ]; do sleep 1; done",
                         timeout=seconds)
                return True
            except (AssertionError, subprocess.TimeoutExpired):
                return False
        wait_for(settled, seconds, f"SSH and cloud-init on {self.address}", every=3)

    def boot_id(self) -> str:
        return self.ssh("cat /proc/sys/kernel/random/boot_id").strip()


class SerialLine:
    """The VM's serial line over the console proxy's websocket."""

    def __init__(self, connection):
        """``connection``: what websockets' connect() returned (entered here)."""
        self.connection, self.seen, self.logged_in = connection, "", False

    def __enter__(self) -> SerialLine:
        self.ws = self.connection.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.logged_in:  # leave the line at a login prompt for the next person
            self.send("exit\r")
            try:
                self.expect("login:", seconds=20)
            except AssertionError:
                pass
        self.connection.__exit__(*exc)

    def send(self, text: str) -> None:
        self.ws.send(text.encode())

    def expect(self, *words: str, seconds: float = 60) -> str:
        """Read until one of ``words`` shows; returns it (what came before it is in
        ``before``). Fails with what was seen."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for word in words:
                if word in self.seen:
                    at = self.seen.index(word)
                    self.before, self.seen = self.seen[:at], self.seen[at + len(word):]
                    return word
            try:
                data = self.ws.recv(timeout=max(0.1, min(2.0, deadline - time.monotonic())))
            except TimeoutError:
                continue
            self.seen += data.decode(errors="replace") if isinstance(data, bytes) else data
        raise AssertionError(f"waited {seconds:g} s for {words} on the serial line; "
                             f"last seen: {self.seen[-500:]!r}")

    def login(self, user: str, password: str) -> None:
        self.send("\r")
        for _ in range(3):  # a prompt from an earlier session, or boot messages
            if self.expect("login:", "$ ", seconds=90) == "login:":
                break
            self.send("exit\r")
        self.send(user + "\r")
        self.expect("Password:", seconds=30)
        self.send(password + "\r")
        if self.expect("$ ", "Login incorrect", seconds=60) != "$ ":
            raise AssertionError(f"the guest refused {user}'s password")
        self.logged_in = True

    def run(self, command: str, seconds: float = 30) -> str:
        """Run a shell command; its output (the marker's arithmetic is done by the
        shell, so the echoed command line never matches it)."""
        self.seen = ""
        self.send(f"{command}; echo __$((40+2))__\r")
        self.expect("__42__", seconds=seconds)
        return self.before


def publish_guest(lab, guest_image, ssh_key, network: str, subnet: str,
                  template: str) -> dict[str, int]:
    """Inside an app context: the admin; alice with her SSH key; the lab's h1 with a
    LouCloud NAT network ``network`` on ``subnet``; the real guest published on h1 as
    the image "debian" (cloud-init, login user debian); and a template ``template`` on
    it (1 vCPU, 512 MiB, 3 GiB) joining that network. Returns their ids."""
    from loucloud.extensions import db
    from loucloud.models import User
    from loucloud.services import hosts as host_service
    from loucloud.services import images as image_service
    from loucloud.services import keys as key_service
    from loucloud.services import networks as network_service
    from loucloud.services import templates as template_service
    from tests.factories import make_user

    admin = make_user("admin", is_admin=True)
    alice = make_user("alice", max_vms=10, max_memory_mib=8192, max_disk_gib=100)
    h1 = host_service.add_host("h1", lab.host(1).uri)
    assert network_service.create_network(network, subnet, [h1]) == [(h1, None)]
    image = image_service.publish_file("debian", str(guest_image), [h1],
                                       image_service.Guest("linux", True, "debian", "bios"))
    made = template_service.create_template(
        template, template_service.Sizes(1, 512, 3), image,
        network=template_service.Network("network", network))
    key_service.add_key(db.session.get(User, alice.id), "tests", ssh_key.public)
    return {"admin": admin.id, "alice": alice.id, "host": h1.id, "template": made.id}


def boot_first_vm(lab, ssh_key, made: dict[str, int], name: str,
                  password: str | None = None) -> tuple[dict, "Guest"]:
    """Inside an app context, after publish_guest: alice's VM ``name`` from its template
    on h1, booted to SSH. Returns ({"vm": id, "ip": address}, the guest)."""
    from loucloud.extensions import db
    from loucloud.models import Host, Template, User
    from loucloud.services.vms import create as vm_create

    vm = vm_create.create_vm(db.session.get(User, made["alice"]), name,
                             db.session.get(Template, made["template"]),
                             db.session.get(Host, made["host"]), password=password)
    ids = {"vm": vm.id, "ip": vm.ip_address}
    guest = Guest(lab.host(1), ids["ip"], ssh_key)
    guest.wait_for_ssh(boot_bound())
    return ids, guest


def tear_down_guest_world(app, network: str, uris: list[str]) -> None:
    """What publish_guest (and the VMs on it) made: every VM deleted through LouCloud,
    then the network and the published image removed from these hosts."""
    import libvirt

    from loucloud.extensions import db
    from loucloud.models import VM
    from loucloud.services import images as image_service
    from loucloud.services.vms import lifecycle

    with app.app_context():
        for row in db.session.execute(db.select(VM)).scalars().all():
            lifecycle.delete_vm(row)
    for uri in uris:
        conn = libvirt.open(uri)
        try:
            net = conn.networkLookupByName(network)
            net.destroy()
            net.undefine()
            conn.storagePoolLookupByName("loucloud").storageVolLookupByName(
                image_service.volume_name_for("debian")).delete(0)
        finally:
            conn.close()


def files_on_disk(lab_host, disk_path: str, names: Iterable[str]) -> dict[str, str | None]:
    """The files ``names`` of the root file system on a shut-off VM's disk, as its guest
    would read them, read on the host: qemu-img turns the disk (a qcow2 overlay on the
    image, whose paths are as ``lab_host``'s libvirtd sees them) into one raw file and
    debugfs reads the Linux partition in it. A missing file is None."""
    host_disk = lab_host.host_path(disk_path)
    info = json.loads(subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", str(host_disk)], check=True,
        capture_output=True, text=True, timeout=60).stdout)
    opened: dict = {"driver": info["format"],
                    "file": {"driver": "file", "filename": str(host_disk)}}
    if info.get("full-backing-filename"):
        backing = lab_host.host_path(info["full-backing-filename"])
        opened["backing"] = {"driver": info.get("backing-filename-format", "qcow2"),
                             "file": {"driver": "file", "filename": str(backing)}}
    with tempfile.TemporaryDirectory(prefix="loucloud-disk-") as work:
        raw = Path(work) / "disk.raw"
        subprocess.run(["qemu-img", "convert", "-U", "-O", "raw",
                        f"json:{json.dumps(opened)}", str(raw)],
                       check=True, capture_output=True, timeout=300)
        table = json.loads(subprocess.run(["sfdisk", "-J", str(raw)], check=True,
                                          capture_output=True, text=True).stdout)
        [linux] = [p for p in table["partitiontable"]["partitions"] if p["type"] == "83"]
        fs = f"{raw}?offset={linux['start'] * 512}"
        found: dict[str, str | None] = {}
        for name in names:
            done = subprocess.run(["debugfs", "-R", f"cat {name}", fs],
                                  capture_output=True, text=True, timeout=60)
            if done.returncode != 0 or "Bad magic number" in done.stderr:
                raise AssertionError(f"debugfs could not read {disk_path}: {done.stderr}")
            found[name] = None if "File not found" in done.stderr else done.stdout
    return found
