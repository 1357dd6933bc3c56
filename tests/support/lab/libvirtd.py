"""libvirtd and virtlogd of the host lab: each host's configuration files, and starting,
stopping, killing and freezing its daemons (through the host's holder)."""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import re
import shutil
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from .base import (
    BOUND_DIRS,
    LIBVIRT_TCP_PORT,
    REAL_ETC_LIBVIRT,
    START_TIMEOUT,
    STOP_TIMEOUT,
    HostLabError,
    LabHost,
    tail,
)
from .processes import alive, comm, read_pidfile, starttime

# Shared copy of libvirt's QEMU capabilities cache (probing QEMU costs libvirtd ~10 s of
# CPU on the first use of a fresh host; the cache is valid for every lab host alike).
CAPS_CACHE = "qemu-capabilities"
_CAPS_DIR_ON_HOST = "/var/cache/libvirt/qemu/capabilities"

# qemu.conf settings; see README of the lab (the package docstring) and the report.
QEMU_CONF = {
    # run QEMU as root: the lab's files are root-owned and root can always open /dev/kvm
    "user": '"root"',
    "group": '"root"',
    # no XATTR bookkeeping of original file owners (not needed, slows down, may fail)
    "remember_owner": "0",
    # no AppArmor/SELinux labelling in a lab
    "security_driver": '"none"',
    # no per-VM cgroups: they live in the machine-global cgroup tree and would collide
    # between lab hosts (same domain name/id on two hosts) and leak on a crash
    "cgroup_controllers": "[ ]",
    # no private /dev mount namespace per QEMU process
    "namespaces": "[ ]",
    # QEMU stdout/stderr through virtlogd (the default), which runs in the host's namespaces
    "stdio_handler": '"logd"',
}
VIRTLOGD_CONF = {
    "log_outputs": '"3:file:/var/log/libvirt/virtlogd.log"',
}


def libvirtd_conf(address: str, host_uuid: str) -> dict[str, str]:
    return {
        "listen_tls": "0",
        "listen_tcp": "1",
        "listen_addr": f'"{address}"',
        "tcp_port": f'"{LIBVIRT_TCP_PORT}"',
        "auth_tcp": '"none"',
        # the unix sockets are private to the host's mount namespace
        "auth_unix_ro": '"none"',
        "auth_unix_rw": '"none"',
        "log_outputs": '"3:file:/var/log/libvirt/libvirtd.log"',
        # every lab host would otherwise report the same (SMBIOS) host UUID, and libvirt
        # refuses e.g. migrations between hosts with the same UUID
        "host_uuid": f'"{host_uuid}"',
    }


DEFAULT_NETWORK_XML = """<network>
  <name>default</name>
  <bridge name='virbr0' stp='off' delay='0'/>
</network>
"""


def set_conf(path: Path, values: dict[str, str]) -> None:
    """Set ``key = value`` entries in a libvirt style config file, dropping any active
    setting of the same keys (including multi-line lists) from the seeded copy."""
    lines = path.read_text().splitlines() if path.exists() else []
    out: list[str] = []
    skipping = False
    key_re = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=")
    for line in lines:
        if skipping:
            if "]" in line:
                skipping = False
            continue
        m = key_re.match(line)
        if m and m.group(1) in values:
            if "[" in line and "]" not in line:
                skipping = True
            continue
        out.append(line)
    out.append("")
    out.append("# --- set by the LouCloud host lab (tests/support/lab) ---")
    out.extend(f"{k} = {v}" for k, v in values.items())
    path.write_text("\n".join(out) + "\n")


def copy_if_different(src: Path, dest_dir: Path) -> None:
    data = src.read_bytes()
    dest = dest_dir / src.name
    with contextlib.suppress(OSError):
        if dest.read_bytes() == data:
            return
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = dest_dir / (src.name + ".hostlab-tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o600)
    tmp.replace(dest)


def libvirt_module() -> Any:
    import libvirt  # optional dependency, imported on use

    if not getattr(libvirt_module, "_handler_set", False):
        # libvirt prints every error to stderr unless a handler is registered
        libvirt.registerErrorHandler(lambda *_a: None, None)
        libvirt_module._handler_set = True  # type: ignore[attr-defined]
    return libvirt


def open_with_timeout(uri: str, timeout: float) -> Any:
    """libvirt.open(uri) that gives up after ``timeout`` seconds (the attempt goes on in
    a daemon thread and its connection is closed when it eventually returns)."""
    libvirt = libvirt_module()
    result: dict[str, Any] = {}
    lock = threading.Lock()

    def target() -> None:
        try:
            conn = libvirt.open(uri)
        except BaseException as exc:  # noqa: BLE001
            with lock:
                result["error"] = exc
            return
        with lock:
            if result.get("abandoned"):
                with contextlib.suppress(Exception):
                    conn.close()
            else:
                result["conn"] = conn

    t = threading.Thread(target=target, name=f"hostlab-open {uri}", daemon=True)
    t.start()
    t.join(timeout)
    with lock:
        if "conn" in result:
            return result["conn"]
        if "error" in result:
            raise result["error"]
        result["abandoned"] = True
    raise TimeoutError(f"libvirt.open({uri!r}) did not return within {timeout:.1f}s")


def probe_kvm() -> bool:
    """True if KVM really runs guests: /dev/kvm creates a VM with a vCPU, and a boot
    loader boots under it (scripts/kvm_probe.py: nested hypervisors may fail there)."""
    if not _kvm_creates_vcpus():
        return False
    spec = importlib.util.spec_from_file_location(
        "kvm_probe", Path(__file__).resolve().parents[3] / "scripts" / "kvm_probe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.probe("kvm")[0]


def _kvm_creates_vcpus() -> bool:
    """True if /dev/kvm can really create a VM with a vCPU."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if fcntl.ioctl(fd, 0xAE00, 0) != 12:  # KVM_GET_API_VERSION
            return False
        vm = fcntl.ioctl(fd, 0xAE01, 0)  # KVM_CREATE_VM
        try:
            vcpu = fcntl.ioctl(vm, 0xAE41, 0)  # KVM_CREATE_VCPU
            os.close(vcpu)
        finally:
            os.close(vm)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


class LibvirtdMixin:
    """HostLab's libvirtd/virtlogd per host. Uses the lab's ``workdir``, ``hosts``,
    ``host()`` and the holder's ``_daemon()``."""

    workdir: Path
    hosts: list[LabHost]

    def _prepare_files(self, h: LabHost) -> None:
        if h.root.exists():
            shutil.rmtree(h.root)
        for _bound, sub in BOUND_DIRS:
            (h.root / sub).mkdir(parents=True)
        etc = h.root / "etc"
        # seed with the real top level config files (not domains, networks, pools, secrets)
        for src in REAL_ETC_LIBVIRT.iterdir():
            if src.is_file():
                shutil.copy2(src, etc / src.name)
        if (REAL_ETC_LIBVIRT / "nwfilter").is_dir():
            shutil.copytree(REAL_ETC_LIBVIRT / "nwfilter", etc / "nwfilter")
        for d in ("qemu/networks/autostart", "qemu/autostart", "storage/autostart", "secrets", "hooks"):
            (etc / d).mkdir(parents=True, exist_ok=True)
        host_uuid = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{h.hostname}.hostlab.loucloud"))
        set_conf(etc / "libvirtd.conf", libvirtd_conf(h.address, host_uuid))
        set_conf(etc / "qemu.conf", QEMU_CONF)
        set_conf(etc / "virtlogd.conf", VIRTLOGD_CONF)
        h.host_path(h.images_dir_on_host).mkdir(parents=True, exist_ok=True)
        (h.root / "lib" / "qemu").mkdir(exist_ok=True)
        shared = self.workdir / CAPS_CACHE
        if shared.is_dir():
            for f in shared.glob("*.xml"):
                copy_if_different(f, h.host_path(_CAPS_DIR_ON_HOST))

    def _start_virtlogd(self, h: LabHost) -> None:
        if self._virtlogd_pid(h):
            return
        self._daemon(
            h,
            [
                "virtlogd",
                "--daemon",
                "--pid-file",
                str(h.root / "virtlogd.pid"),
                "--config",
                "/etc/libvirt/virtlogd.conf",
            ],
            "virtlogd-start.log",
            "/var/log/libvirt/virtlogd.log",
        )
        deadline = time.monotonic() + 10
        while not h.host_path("/run/libvirt/virtlogd-sock").exists():
            if time.monotonic() > deadline:
                raise HostLabError(
                    f"virtlogd of {h.name} did not create its socket:\n{tail(h.root / 'virtlogd-start.log')}"
                )
            time.sleep(0.01)

    def _virtlogd_pid(self, h: LabHost) -> int | None:
        pid = read_pidfile(h.root / "virtlogd.pid")
        if pid and alive(pid) and comm(pid) == "virtlogd":
            return pid
        return None

    def _define_default_network(self, h: LabHost) -> None:
        conn = open_with_timeout(h.uri, 30)
        try:
            net = conn.networkDefineXML(DEFAULT_NETWORK_XML)
            net.setAutostart(True)
            net.create()
        finally:
            conn.close()
        h.has_default_network = True

    def _warm_capabilities(self) -> None:
        """Make host 1 probe (or validate) QEMU's capabilities, then hand its cache to the
        other hosts and to the shared cache, so no host probes QEMU on its own."""
        first = self.hosts[0]
        conn = open_with_timeout(first.uri, START_TIMEOUT)
        try:
            conn.getCapabilities()
        finally:
            conn.close()
        shared = self.workdir / CAPS_CACHE
        for f in sorted(first.host_path(_CAPS_DIR_ON_HOST).glob("*.xml")):
            copy_if_different(f, shared)
            for h in self.hosts[1:]:
                copy_if_different(f, h.host_path(_CAPS_DIR_ON_HOST))

    # ------------------------------------------------------------ libvirtd control

    def libvirtd_pid(self, host: LabHost | int | str) -> int:
        h = self.host(host)
        pid = read_pidfile(h.root / "libvirtd.pid")
        if pid and alive(pid) and comm(pid) == "libvirtd":
            return pid
        raise HostLabError(f"libvirtd of {h.name} is not running")

    def _libvirtd_pid_or_none(self, h: LabHost) -> int | None:
        try:
            return self.libvirtd_pid(h)
        except HostLabError:
            return None

    def start_libvirtd(self, host: LabHost | int | str, timeout: float = START_TIMEOUT) -> None:
        """Start libvirtd in the host's namespaces and wait until it answers."""
        h = self.host(host)
        if self._libvirtd_pid_or_none(h):
            raise HostLabError(f"libvirtd of {h.name} is already running")
        self._start_virtlogd(h)
        self._daemon(
            h,
            [
                "libvirtd",
                "--daemon",
                "--listen",
                "--pid-file",
                str(h.root / "libvirtd.pid"),
                "--config",
                "/etc/libvirt/libvirtd.conf",
            ],
            "libvirtd-start.log",
            "/var/log/libvirt/libvirtd.log",
        )
        deadline = time.monotonic() + timeout
        self.wait_answering(h, timeout)
        self._wait_reconnected(h, max(1.0, deadline - time.monotonic()))

    def _wait_reconnected(self, h: LabHost, timeout: float) -> None:
        """A restarted libvirtd reconnects to running QEMU processes in background jobs;
        an API call racing with that (e.g. destroy) can fail oddly. Wait until no running
        domain has a job any more (or it turned out dead)."""
        libvirt = libvirt_module()
        deadline = time.monotonic() + timeout
        conn = open_with_timeout(h.uri, timeout)
        try:
            pending = conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
            while pending:
                still = []
                for dom in pending:
                    try:
                        if dom.isActive() and dom.controlInfo()[0] != libvirt.VIR_DOMAIN_CONTROL_OK:
                            still.append(dom)
                    except libvirt.libvirtError:
                        pass  # gone meanwhile
                pending = still
                if pending:
                    if time.monotonic() > deadline:
                        names = ", ".join(d.name() for d in pending)
                        raise HostLabError(f"libvirtd of {h.name} did not finish reconnecting to: {names}")
                    time.sleep(0.02)
        finally:
            conn.close()

    def wait_answering(self, host: LabHost | int | str, timeout: float = START_TIMEOUT) -> None:
        """Wait until libvirt.open(host.uri) works and the daemon answers a call."""
        h = self.host(host)
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if self._libvirtd_pid_or_none(h) is None:
                # give a just forked daemon a moment to write its pid file
                time.sleep(0.05)
                if self._libvirtd_pid_or_none(h) is None:
                    last = HostLabError("libvirtd process is not running")
                    break
            try:
                conn = open_with_timeout(h.uri, max(0.1, deadline - time.monotonic()))
                try:
                    conn.getLibVersion()
                    conn.listAllDomains(0)
                finally:
                    conn.close()
                return
            except Exception as exc:  # noqa: BLE001
                last = exc
                time.sleep(0.02)
        raise HostLabError(
            f"libvirtd of {h.name} does not answer on {h.uri} ({last}); libvirtd.log tail:\n"
            f"{tail(h.host_path('/var/log/libvirt/libvirtd.log'))}\n"
            f"libvirtd-start.log:\n{tail(h.root / 'libvirtd-start.log')}"
        )

    def stop_libvirtd(
        self, host: LabHost | int | str, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT
    ) -> None:
        """Send ``sig`` to libvirtd and wait until the process is gone (QEMU keeps running)."""
        h = self.host(host)
        pid = self._libvirtd_pid_or_none(h)
        if pid is None:
            return
        st = starttime(pid)
        with contextlib.suppress(ProcessLookupError):
            if sig != signal.SIGKILL:
                os.kill(pid, signal.SIGCONT)  # a frozen libvirtd cannot handle SIGTERM
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while alive(pid, st):
            if time.monotonic() > deadline:
                raise HostLabError(f"libvirtd of {h.name} (pid {pid}) did not exit after signal {int(sig)}")
            time.sleep(0.01)

    def kill_libvirtd(self, host: LabHost | int | str) -> None:
        self.stop_libvirtd(host, signal.SIGKILL)

    def freeze(self, host: LabHost | int | str) -> None:
        os.kill(self.libvirtd_pid(host), signal.SIGSTOP)

    def thaw(self, host: LabHost | int | str) -> None:
        os.kill(self.libvirtd_pid(host), signal.SIGCONT)
