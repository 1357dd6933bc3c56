"""A lab of real libvirtd hosts on this one machine, for system tests and benchmarks.

Every lab host ``h<i>`` (1-based) is a real ``libvirtd`` (+ ``virtlogd``) running in
its own network namespace ``<prefix>-h<i>``, its own mount namespace and its own UTS
namespace (hostname ``<prefix>-h<i>``).  The mount namespace bind-mounts the host's
private state from ``<workdir>/h<i>/{etc,lib,run,log,cache}`` over ``/etc/libvirt``,
``/var/lib/libvirt``, ``/run/libvirt``, ``/var/log/libvirt`` and ``/var/cache/libvirt``,
so lab hosts never share sockets, pid files, domains or networks with each other or with
a libvirtd running in the root namespace.

Networking: host i gets a veth pair ``<prefix>h<i>r`` (root side, ``10.231.<i>.1/24``)
and ``<prefix>h<i>n`` (namespace side, ``10.231.<i>.2/24``).  libvirtd listens on TCP
16509 on the namespace address only, without authentication, so the root namespace
reaches it as ``qemu+tcp://10.231.<i>.2/system``.  Nothing else on the machine is
touched, except for one ``unreachable 10.231.<i>.0/24`` fallback route per host (high
metric) that keeps packets for a downed lab link from leaking out via the default route.

A small "holder" process per host (this file run as a script, see ``_holder_main``)
keeps the namespaces alive, starts libvirtd/virtlogd on request and reaps them and the
QEMU processes as a child subreaper; so libvirtd can be stopped, killed, frozen and
started again in the same namespaces with the same state, and QEMU processes survive
libvirtd restarts exactly as on a real host.

Cleanup finds every process living in the lab's namespaces, kills it, and deletes the
namespaces, veths and routes; ``start()`` does this first for leftovers of a crashed run
with the same prefix.

Only one lab can run at a time on a machine (the addresses do not depend on the prefix);
starting a lab kills a running one with the same prefix.  The hosts cannot reach each
other (each netns only has its link to the root namespace), so no migrations between them.

Python::

    lab = HostLab(Path("/tmp/mylab"))            # prefix "lc"
    h1, h2 = lab.start(count=2, network_on={1})  # h1 gets an isolated network "default"
    conn = libvirt.open(h1.uri)                  # qemu+tcp://10.231.1.2/system
    path = lab.make_image(h1, "vm1.qcow2", 1 << 30)   # "/var/lib/libvirt/images/vm1.qcow2"
    h1.host_path(path)                           # the same file seen from here
    lab.stop_libvirtd(h1); lab.start_libvirtd(h1)     # also kill_libvirtd, freeze/thaw,
    lab.link_down(h1); lab.link_up(h1)                # libvirtd_pid
    lab.teardown()

Command line (leaves the hosts running, state recorded in ``<workdir>/lab.json``)::

    python -m tests.system.hostlab up --count 2 [--workdir DIR] [--prefix lc] [--network-on 1,2]
    python -m tests.system.hostlab status [--workdir DIR]
    python -m tests.system.hostlab down [--workdir DIR] [--prefix lc] [--keep-files]

Files: ``<workdir>/h<i>/`` per host (logs in ``log/``, QEMU logs in ``log/qemu/``;
holder/daemon start logs and pid files at the top), ``<workdir>/lab.json``, and
``<workdir>/qemu-capabilities/`` (kept by teardown: saves each later start the ~2-10 s
of QEMU probing).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import fcntl
import json
import os
import posixpath
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_PREFIX = "lc"
DEFAULT_WORKDIR = Path("/tmp/loucloud-hostlab")
SUBNET = "10.231"
LIBVIRT_TCP_PORT = 16509
MAX_HOSTS = 32
# Metric of the per-host "unreachable" fallback route (see link_down()).
FALLBACK_ROUTE_METRIC = 4231
STATE_FILE = "lab.json"
_HOLDER_ARG = "_hostlab_holder"
_HOLDER_CTL = "holder.ctl"  # FIFO: JSON requests to the holder, one a line
_HOLDER_RESULTS = "holder-results"  # one file per request: the exit code
# Shared copy of libvirt's QEMU capabilities cache (probing QEMU costs libvirtd ~10 s of
# CPU on the first use of a fresh host; the cache is valid for every lab host alike).
CAPS_CACHE = "qemu-capabilities"
_CAPS_DIR_ON_HOST = "/var/cache/libvirt/qemu/capabilities"

START_TIMEOUT = 60.0  # seconds for one libvirtd to answer after being started
STOP_TIMEOUT = 30.0  # seconds for one libvirtd to exit after a signal
KILL_TIMEOUT = 20.0  # seconds for all lab processes to vanish after SIGKILL

# (path as libvirtd sees it, sub directory of <workdir>/h<i>) -- the per-host state
BOUND_DIRS: tuple[tuple[str, str], ...] = (
    ("/etc/libvirt", "etc"),
    ("/var/lib/libvirt", "lib"),
    ("/run/libvirt", "run"),
    ("/var/log/libvirt", "log"),
    ("/var/cache/libvirt", "cache"),
)
# Aliases that resolve into a bound dir (Debian: /var/run -> /run).
_PATH_ALIASES = (("/var/run/libvirt", "/run/libvirt"),)

REAL_ETC_LIBVIRT = Path("/etc/libvirt")
IMAGES_DIR_ON_HOST = "/var/lib/libvirt/images"

_DAEMON_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
_REQUIRED_TOOLS = ("ip", "nsenter", "unshare", "setsid", "mount", "umount", "qemu-img")
_REQUIRED_DAEMONS = ("libvirtd", "virtlogd")

# qemu.conf settings; see README of the lab (module docstring) and the report.
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


def _libvirtd_conf(address: str, host_uuid: str) -> dict[str, str]:
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


class HostLabError(RuntimeError):
    """Raised when the lab cannot be set up or a lab operation fails."""


@dataclass
class LabHost:
    index: int
    name: str  # "h1"
    netns: str  # "lc-h1"
    address: str  # "10.231.1.2", the address libvirtd and VNC listen on
    uri: str  # "qemu+tcp://10.231.1.2/system"
    root: Path  # <workdir>/h1
    images_dir_on_host: str = IMAGES_DIR_ON_HOST
    root_address: str = ""  # "10.231.1.1", the root namespace end of the link
    veth_root: str = ""  # "lch1r"
    veth_ns: str = ""  # "lch1n"
    hostname: str = ""  # "lc-h1", hostname inside the host's UTS namespace
    has_default_network: bool = False

    def host_path(self, path_on_host: str) -> Path:
        """The root namespace path of a file that libvirtd/QEMU on this host see as
        ``path_on_host`` (paths outside the per-host dirs are shared with the root ns)."""
        if not posixpath.isabs(path_on_host):
            raise ValueError(f"not an absolute path: {path_on_host!r}")
        p = posixpath.normpath(path_on_host)
        if p.startswith("//"):
            p = "/" + p.lstrip("/")
        for alias, real in _PATH_ALIASES:
            if p == alias or p.startswith(alias + "/"):
                p = real + p[len(alias) :]
        for bound, sub in BOUND_DIRS:
            if p == bound:
                return self.root / sub
            if p.startswith(bound + "/"):
                return self.root / sub / p[len(bound) + 1 :]
        return Path(p)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "netns": self.netns,
            "address": self.address,
            "uri": self.uri,
            "root": str(self.root),
            "images_dir_on_host": self.images_dir_on_host,
            "root_address": self.root_address,
            "veth_root": self.veth_root,
            "veth_ns": self.veth_ns,
            "hostname": self.hostname,
            "has_default_network": self.has_default_network,
        }


# --------------------------------------------------------------------------- helpers


def _run(cmd: list[str], *, check: bool = True, timeout: float = 60.0, **kw: Any) -> subprocess.CompletedProcess[str]:
    env = kw.pop("env", None) or {"PATH": _DAEMON_PATH, "LC_ALL": "C"}
    res = subprocess.run(
        cmd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
        **kw,
    )
    if check and res.returncode != 0:
        raise HostLabError(
            f"command failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr.strip()}{res.stdout.strip()}"
        )
    return res


def _ns_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _starttime(pid: int) -> int | None:
    """Start time of a live, non-zombie process (clock ticks since boot), else None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def _alive(pid: int | None, starttime: int | None = None) -> bool:
    if not pid:
        return False
    st = _starttime(pid)
    if st is None:
        return False
    return starttime is None or st == starttime


def _cmdline(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def _is_holder(pid: int | None, starttime: int | None = None) -> bool:
    return _alive(pid, starttime) and _HOLDER_ARG.encode() in _cmdline(pid or 0)


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def _read_pidfile(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _tail(path: Path, lines: int = 30) -> str:
    try:
        with open(path, errors="replace") as f:
            data = f.readlines()
    except OSError:
        return f"(no {path})"
    return "".join(data[-lines:]).rstrip() or f"({path} is empty)"


def _set_conf(path: Path, values: dict[str, str]) -> None:
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
    out.append("# --- set by the LouCloud host lab (tests/system/hostlab.py) ---")
    out.extend(f"{k} = {v}" for k, v in values.items())
    path.write_text("\n".join(out) + "\n")


def _copy_if_different(src: Path, dest_dir: Path) -> None:
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


def _libvirt() -> Any:
    import libvirt  # noqa: PLC0415 -- optional dependency, imported on use

    if not getattr(_libvirt, "_handler_set", False):
        # libvirt prints every error to stderr unless a handler is registered
        libvirt.registerErrorHandler(lambda *_a: None, None)
        _libvirt._handler_set = True  # type: ignore[attr-defined]
    return libvirt


def _open_with_timeout(uri: str, timeout: float) -> Any:
    """libvirt.open(uri) that gives up after ``timeout`` seconds (the attempt goes on in
    a daemon thread and its connection is closed when it eventually returns)."""
    libvirt = _libvirt()
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


def _tcp_probe(address: str, port: int, timeout: float) -> str:
    """'open', 'refused' or 'unreachable' (timeout / no route)."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return "open"
    except ConnectionRefusedError:
        return "refused"
    except OSError:
        return "unreachable"


# --------------------------------------------------------------------------- the lab


class HostLab:
    """N libvirtd hosts in their own network/mount/UTS namespaces. See module docs."""

    _kvm_cache: bool | None = None

    def __init__(self, workdir: Path | str = DEFAULT_WORKDIR, prefix: str = DEFAULT_PREFIX,
                 subnet: str = SUBNET):
        if not re.fullmatch(r"[a-z][a-z0-9]{0,7}", prefix):
            raise ValueError("prefix must be 1-8 chars of [a-z0-9], starting with a letter")
        # Two labs may run at once (say a benchmark and the tests) with their own
        # prefixes and their own /16 of the private 10.0.0.0/8 range.
        if not re.fullmatch(r"10\.(2[3-4][0-9]|250)", subnet):
            raise ValueError("subnet must be 10.230 to 10.250 (the lab's own addresses)")
        self.workdir = Path(workdir).absolute()
        self.prefix = prefix
        self.subnet = subnet
        self.hosts: list[LabHost] = []
        # holder process per host index: (pid, starttime)
        self._holders: dict[int, tuple[int, int]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ availability

    @staticmethod
    def unavailable_reason() -> str | None:
        """None if the lab can run here, else a human readable reason."""
        if not sys.platform.startswith("linux"):
            return "the host lab needs Linux"
        if os.geteuid() != 0:
            return "the host lab needs root (network/mount namespaces, veth, libvirtd)"
        for d in _REQUIRED_DAEMONS:
            if not shutil.which(d, path=_DAEMON_PATH):
                return f"no {d} binary (install libvirt-daemon-system)"
        if not shutil.which("qemu-system-x86_64", path=_DAEMON_PATH):
            return "no qemu-system-x86_64 (install qemu-system-x86)"
        for t in _REQUIRED_TOOLS:
            if not shutil.which(t, path=_DAEMON_PATH):
                return f"no {t} binary (install iproute2, util-linux, coreutils, qemu-utils)"
        if not (REAL_ETC_LIBVIRT / "libvirtd.conf").exists():
            return "no /etc/libvirt/libvirtd.conf (install libvirt-daemon-system)"
        try:
            _libvirt()
        except ImportError as exc:
            return f"the libvirt Python module is not importable: {exc}"
        for ns in ("net", "mnt", "uts"):
            if not os.path.exists(f"/proc/self/ns/{ns}"):
                return f"no {ns} namespace support in this kernel"
        # a throwaway probe: new net+mount+uts namespace with a veth pair in it; it
        # disappears with the probe process, nothing is left behind
        probe = (
            "ip link add hlprobe0 type veth peer name hlprobe1 && ip link set lo up && "
            "mount -t sysfs sysfs /sys && echo probe > /proc/sys/kernel/hostname"
        )
        try:
            res = _run(["unshare", "--net", "--mount", "--uts", "--", "sh", "-c", probe], check=False, timeout=20)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"cannot create namespaces: {exc}"
        if res.returncode != 0:
            return f"cannot create network/mount namespaces with a veth pair: {res.stderr.strip()}"
        return None

    @classmethod
    def kvm_usable(cls) -> bool:
        """True if /dev/kvm can really create a VM with a vCPU (QEMU runs as root in the lab)."""
        if cls._kvm_cache is None:
            cls._kvm_cache = cls._probe_kvm()
        return cls._kvm_cache

    @staticmethod
    def _probe_kvm() -> bool:
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

    # ------------------------------------------------------------ naming

    def _netns(self, i: int) -> str:
        return f"{self.prefix}-h{i}"

    def _veth_root(self, i: int) -> str:
        return f"{self.prefix}h{i}r"

    def _veth_ns(self, i: int) -> str:
        return f"{self.prefix}h{i}n"

    def _make_host(self, i: int) -> LabHost:
        address = f"{self.subnet}.{i}.2"
        return LabHost(
            index=i,
            name=f"h{i}",
            netns=self._netns(i),
            address=address,
            uri=f"qemu+tcp://{address}/system",
            root=self.workdir / f"h{i}",
            images_dir_on_host=IMAGES_DIR_ON_HOST,
            root_address=f"{self.subnet}.{i}.1",
            veth_root=self._veth_root(i),
            veth_ns=self._veth_ns(i),
            hostname=f"{self.prefix}-h{i}",
        )

    def host(self, which: int | str | LabHost) -> LabHost:
        if isinstance(which, LabHost):
            return which
        for h in self.hosts:
            if which in (h.index, h.name, h.netns):
                return h
        raise KeyError(f"no lab host {which!r}")

    # ------------------------------------------------------------ start

    def start(self, count: int = 2, network_on: Iterable[int] = frozenset()) -> list[LabHost]:
        if not 1 <= count <= MAX_HOSTS:
            raise ValueError(f"count must be 1..{MAX_HOSTS}")
        network_on = set(network_on)
        if not network_on <= set(range(1, count + 1)):
            raise ValueError(f"network_on {sorted(network_on)} not within 1..{count}")
        if self.hosts:
            raise HostLabError("lab already started; teardown() first")
        reason = self.unavailable_reason()
        if reason:
            raise HostLabError(f"host lab unavailable: {reason}")

        self.cleanup_stale()
        hosts = [self._make_host(i) for i in range(1, count + 1)]
        self._check_addresses_free(hosts)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.hosts = hosts
        try:
            for h in hosts:
                self._prepare_files(h)
            for h in hosts:
                self._create_network(h)
            self._write_state()
            errors: list[BaseException] = []
            with concurrent.futures.ThreadPoolExecutor(max_workers=count, thread_name_prefix="hostlab") as ex:
                futs = [ex.submit(self._boot_host, h, h.index in network_on) for h in hosts]
                for fut in futs:
                    exc = fut.exception()
                    if exc is not None:
                        errors.append(exc)
            if errors:
                raise errors[0]
            self._warm_capabilities()
            self._write_state()
        except BaseException:
            # keep the per-host dirs (logs) for a look; the next start() removes them
            self.teardown(remove_files=False)
            raise
        return list(hosts)

    def _check_addresses_free(self, hosts: list[LabHost]) -> None:
        res = _run(["ip", "-o", "-4", "addr", "show"], check=False)
        ours = {h.veth_root for h in hosts}
        for line in res.stdout.splitlines():
            parts = line.split()
            if len(parts) < 4:
                continue
            ifname, addr = parts[1], parts[3]
            for h in hosts:
                if addr.startswith(f"{self.subnet}.{h.index}.") and ifname not in ours:
                    raise HostLabError(
                        f"address {addr} of lab host {h.name} is already used by interface {ifname} "
                        "(another lab with a different prefix running?)"
                    )

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
        _set_conf(etc / "libvirtd.conf", _libvirtd_conf(h.address, host_uuid))
        _set_conf(etc / "qemu.conf", QEMU_CONF)
        _set_conf(etc / "virtlogd.conf", VIRTLOGD_CONF)
        h.host_path(h.images_dir_on_host).mkdir(parents=True, exist_ok=True)
        (h.root / "lib" / "qemu").mkdir(exist_ok=True)
        shared = self.workdir / CAPS_CACHE
        if shared.is_dir():
            for f in shared.glob("*.xml"):
                _copy_if_different(f, h.host_path(_CAPS_DIR_ON_HOST))

    def _create_network(self, h: LabHost) -> None:
        i = h.index
        _run(["ip", "netns", "add", h.netns])
        _run(["ip", "link", "add", h.veth_root, "type", "veth", "peer", "name", h.veth_ns, "netns", h.netns])
        # no IPv6 chatter on the lab links
        with contextlib.suppress(OSError):
            Path(f"/proc/sys/net/ipv6/conf/{h.veth_root}/disable_ipv6").write_text("1")
        _run(["ip", "addr", "add", f"{h.root_address}/24", "dev", h.veth_root])
        _run(["ip", "link", "set", h.veth_root, "up"])
        _run(
            [
                "ip",
                "route",
                "replace",
                "unreachable",
                f"{self.subnet}.{i}.0/24",
                "metric",
                str(FALLBACK_ROUTE_METRIC),
            ]
        )
        ns_script = (
            "for f in /proc/sys/net/ipv6/conf/*/disable_ipv6; do echo 1 > $f; done 2>/dev/null; "
            f"ip addr add {h.address}/24 dev {h.veth_ns} && ip link set {h.veth_ns} up && ip link set lo up"
        )
        _run(["nsenter", f"--net=/run/netns/{h.netns}", "--", "sh", "-c", ns_script])

    def _holder_script(self, h: LabHost) -> str:
        q = shlex.quote
        lines = [
            "set -eu",
            # a sysfs of this network namespace (libvirt configures bridges through it)
            "umount -l /sys",
            "mount -t sysfs -o nosuid,nodev,noexec sysfs /sys",
            # do not pin the other network namespaces through copies of /run/netns mounts
            "umount -R -l /run/netns 2>/dev/null || true",
            f"echo {q(h.hostname)} > /proc/sys/kernel/hostname",
        ]
        for bound, sub in BOUND_DIRS:
            lines.append(f"mkdir -p {bound}")
            lines.append(f"mount --bind {q(str(h.root / sub))} {bound}")
        holder = [sys.executable, "-I", "-S", str(Path(__file__).resolve()), _HOLDER_ARG, str(h.root)]
        lines.append("exec " + " ".join(q(a) for a in holder))
        return "\n".join(lines) + "\n"

    def _start_holder(self, h: LabHost) -> None:
        script = h.root / "holder.sh"
        script.write_text(self._holder_script(h))
        os.mkfifo(h.root / _HOLDER_CTL, 0o600)
        (h.root / _HOLDER_RESULTS).mkdir()
        pidfile = h.root / "holder.pid"
        log = h.root / "holder.log"
        with open(log, "wb") as logf:
            subprocess.run(
                [
                    "setsid",
                    "--fork",
                    "nsenter",
                    f"--net=/run/netns/{h.netns}",
                    "--",
                    "unshare",
                    "--mount",
                    "--uts",
                    "--propagation",
                    "private",
                    "--",
                    "sh",
                    str(script),
                ],
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=logf,
                env={"PATH": _DAEMON_PATH, "LC_ALL": "C"},
                check=True,
                timeout=30,
            )
        deadline = time.monotonic() + 15
        while True:
            pid = _read_pidfile(pidfile)
            if pid and _is_holder(pid):
                st = _starttime(pid)
                assert st is not None
                with self._lock:
                    self._holders[h.index] = (pid, st)
                return
            if time.monotonic() > deadline:
                raise HostLabError(f"namespace holder of {h.name} did not come up:\n{_tail(log)}")
            time.sleep(0.01)

    def _holder_pid(self, h: LabHost) -> int:
        entry = self._holders.get(h.index)
        if not entry or not _alive(*entry):
            raise HostLabError(f"namespace holder of {h.name} is gone (see {h.root / 'holder.log'})")
        return entry[0]

    def _boot_host(self, h: LabHost, with_network: bool) -> None:
        self._start_holder(h)
        self._start_virtlogd(h)
        self.start_libvirtd(h)
        if with_network:
            self._define_default_network(h)

    def _daemon(self, h: LabHost, argv: list[str], logname: str, daemon_log: str, timeout: float = 60.0) -> None:
        """Run a self-daemonizing libvirt daemon as a child of the host's holder (so it
        and the QEMU processes it spawns are reaped at once when they exit) and wait
        for the daemon's foreground part to report success."""
        self._holder_pid(h)
        log = h.root / logname
        exe = shutil.which(argv[0], path=_DAEMON_PATH)
        if not exe:
            raise HostLabError(f"no {argv[0]} binary")
        req_id = uuid.uuid4().hex
        request = {
            "id": req_id,
            "argv": [exe] + argv[1:],
            "env": {"PATH": _DAEMON_PATH, "LC_ALL": "C", "HOME": "/root"},
            "log": str(log),
        }
        data = (json.dumps(request) + "\n").encode()
        assert len(data) < 4096  # one atomic FIFO write
        try:
            fd = os.open(h.root / _HOLDER_CTL, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise HostLabError(f"namespace holder of {h.name} does not listen: {exc}") from None
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        result = h.root / _HOLDER_RESULTS / req_id
        deadline = time.monotonic() + timeout
        while not result.exists():
            if time.monotonic() > deadline:
                raise HostLabError(
                    f"{argv[0]} of {h.name} did not start within {timeout}s:\n{_tail(log)}\n"
                    f"{daemon_log} tail:\n{_tail(h.host_path(daemon_log))}"
                )
            self._holder_pid(h)
            time.sleep(0.005)
        rc = result.read_text().strip()
        result.unlink()
        if rc != "0":
            raise HostLabError(
                f"{argv[0]} of {h.name} failed to start ({rc}):\n{_tail(log)}\n"
                f"{daemon_log} tail:\n{_tail(h.host_path(daemon_log))}"
            )

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
                    f"virtlogd of {h.name} did not create its socket:\n{_tail(h.root / 'virtlogd-start.log')}"
                )
            time.sleep(0.01)

    def _virtlogd_pid(self, h: LabHost) -> int | None:
        pid = _read_pidfile(h.root / "virtlogd.pid")
        if pid and _alive(pid) and _comm(pid) == "virtlogd":
            return pid
        return None

    def _define_default_network(self, h: LabHost) -> None:
        conn = _open_with_timeout(h.uri, 30)
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
        conn = _open_with_timeout(first.uri, START_TIMEOUT)
        try:
            conn.getCapabilities()
        finally:
            conn.close()
        shared = self.workdir / CAPS_CACHE
        for f in sorted(first.host_path(_CAPS_DIR_ON_HOST).glob("*.xml")):
            _copy_if_different(f, shared)
            for h in self.hosts[1:]:
                _copy_if_different(f, h.host_path(_CAPS_DIR_ON_HOST))

    # ------------------------------------------------------------ libvirtd control

    def libvirtd_pid(self, host: LabHost | int | str) -> int:
        h = self.host(host)
        pid = _read_pidfile(h.root / "libvirtd.pid")
        if pid and _alive(pid) and _comm(pid) == "libvirtd":
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
        libvirt = _libvirt()
        deadline = time.monotonic() + timeout
        conn = _open_with_timeout(h.uri, timeout)
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
                conn = _open_with_timeout(h.uri, max(0.1, deadline - time.monotonic()))
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
            f"{_tail(h.host_path('/var/log/libvirt/libvirtd.log'))}\n"
            f"libvirtd-start.log:\n{_tail(h.root / 'libvirtd-start.log')}"
        )

    def stop_libvirtd(
        self, host: LabHost | int | str, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT
    ) -> None:
        """Send ``sig`` to libvirtd and wait until the process is gone (QEMU keeps running)."""
        h = self.host(host)
        pid = self._libvirtd_pid_or_none(h)
        if pid is None:
            return
        st = _starttime(pid)
        with contextlib.suppress(ProcessLookupError):
            if sig != signal.SIGKILL:
                os.kill(pid, signal.SIGCONT)  # a frozen libvirtd cannot handle SIGTERM
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while _alive(pid, st):
            if time.monotonic() > deadline:
                raise HostLabError(f"libvirtd of {h.name} (pid {pid}) did not exit after signal {int(sig)}")
            time.sleep(0.01)

    def kill_libvirtd(self, host: LabHost | int | str) -> None:
        self.stop_libvirtd(host, signal.SIGKILL)

    def freeze(self, host: LabHost | int | str) -> None:
        os.kill(self.libvirtd_pid(host), signal.SIGSTOP)

    def thaw(self, host: LabHost | int | str) -> None:
        os.kill(self.libvirtd_pid(host), signal.SIGCONT)

    def link_down(self, host: LabHost | int | str) -> None:
        """Take the root side veth down: connects to the host fail (no route to host)
        and established connections hang."""
        h = self.host(host)
        _run(["ip", "link", "set", h.veth_root, "down"])

    def link_up(self, host: LabHost | int | str, timeout: float = 10.0) -> None:
        h = self.host(host)
        _run(["ip", "link", "set", h.veth_root, "up"])
        deadline = time.monotonic() + timeout
        while _tcp_probe(h.address, LIBVIRT_TCP_PORT, 0.5) == "unreachable":
            if time.monotonic() > deadline:
                raise HostLabError(f"{h.name} still unreachable after link_up")
            time.sleep(0.02)

    # ------------------------------------------------------------ images

    def make_image(self, host: LabHost | int | str, name: str, size_bytes: int, fmt: str = "qcow2") -> str:
        """Create a blank (sparse) image in the host's images dir; return its path as
        libvirtd sees it."""
        h = self.host(host)
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"bad image name {name!r}")
        path_on_host = posixpath.join(h.images_dir_on_host, name)
        local = h.host_path(path_on_host)
        if local.exists():
            raise FileExistsError(local)
        _run(["qemu-img", "create", "-q", "-f", fmt, str(local), str(int(size_bytes))])
        return path_on_host

    # ------------------------------------------------------------ state

    def _write_state(self) -> None:
        state = {
            "prefix": self.prefix,
            "subnet": self.subnet,
            "workdir": str(self.workdir),
            "hosts": [h.to_json() for h in self.hosts],
            "holders": {str(i): list(v) for i, v in self._holders.items()},
        }
        tmp = self.workdir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.workdir / STATE_FILE)

    @classmethod
    def attach(cls, workdir: Path | str = DEFAULT_WORKDIR) -> HostLab:
        """A HostLab for a lab started earlier (e.g. by ``hostlab up``) from its state file."""
        workdir = Path(workdir).absolute()
        state = json.loads((workdir / STATE_FILE).read_text())
        lab = cls(workdir, state["prefix"], state.get("subnet", SUBNET))
        for hj in state["hosts"]:
            h = lab._make_host(int(hj["index"]))
            h.has_default_network = bool(hj.get("has_default_network"))
            lab.hosts.append(h)
        for i, (pid, st) in state.get("holders", {}).items():
            if _is_holder(pid, st):
                lab._holders[int(i)] = (pid, st)
        return lab

    def summary(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "workdir": str(self.workdir),
            "uris": [h.uri for h in self.hosts],
            "hosts": [h.to_json() for h in self.hosts],
        }

    # ------------------------------------------------------------ cleanup

    def _stale_indexes(self) -> set[int]:
        found: set[int] = {h.index for h in self.hosts} | set(self._holders)
        pat_ns = re.compile(rf"{re.escape(self.prefix)}-h(\d+)")
        pat_if = re.compile(rf"{re.escape(self.prefix)}h(\d+)[rn]")
        with contextlib.suppress(OSError):
            for name in os.listdir("/run/netns"):
                if m := pat_ns.fullmatch(name):
                    found.add(int(m.group(1)))
        with contextlib.suppress(OSError):
            for name in os.listdir("/sys/class/net"):
                if m := pat_if.fullmatch(name):
                    found.add(int(m.group(1)))
        with contextlib.suppress(Exception):
            state = json.loads((self.workdir / STATE_FILE).read_text())
            if state.get("prefix") == self.prefix:
                for hj in state.get("hosts", []):
                    found.add(int(hj["index"]))
                for i, (pid, st) in state.get("holders", {}).items():
                    if _is_holder(pid, st):
                        self._holders.setdefault(int(i), (pid, st))
        return found

    def _lab_processes(self, indexes: Iterable[int]) -> list[int]:
        net_ids: set[tuple[int, int]] = set()
        mnt_ids: set[tuple[int, int]] = set()
        for i in indexes:
            nid = _ns_id(f"/run/netns/{self._netns(i)}")
            if nid:
                net_ids.add(nid)
            entry = self._holders.get(i)
            if entry and _is_holder(*entry):
                for kind, ids in (("net", net_ids), ("mnt", mnt_ids)):
                    nid = _ns_id(f"/proc/{entry[0]}/ns/{kind}")
                    if nid:
                        ids.add(nid)
        if not net_ids and not mnt_ids:
            return []
        me = os.getpid()
        root_net, root_mnt = _ns_id("/proc/1/ns/net"), _ns_id("/proc/1/ns/mnt")
        net_ids.discard(root_net)  # paranoia: never kill the whole machine
        mnt_ids.discard(root_mnt)
        pids = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == me:
                continue
            pid = int(name)
            if _ns_id(f"/proc/{pid}/ns/net") in net_ids or _ns_id(f"/proc/{pid}/ns/mnt") in mnt_ids:
                pids.append(pid)
        return pids

    def _kill_lab_processes(self, indexes: set[int]) -> None:
        """SIGKILL everything in the lab's namespaces: first QEMU and the daemons (so the
        holders reap them), then the holders."""
        deadline = time.monotonic() + KILL_TIMEOUT
        for phase in ("others", "holders"):
            while True:
                pids = self._lab_processes(indexes)
                if phase == "others":
                    pids = [p for p in pids if not _is_holder(p)]
                if not pids:
                    break
                if time.monotonic() > deadline:
                    desc = ", ".join(f"{p}({_comm(p)})" for p in pids)
                    raise HostLabError(f"lab processes survive SIGKILL: {desc}")
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.01)

    def _remove_network(self, i: int) -> None:
        veth = self._veth_root(i)
        if os.path.exists(f"/sys/class/net/{veth}"):
            _run(["ip", "link", "del", veth], check=False)
        if os.path.exists(f"/run/netns/{self._netns(i)}"):
            _run(["ip", "netns", "del", self._netns(i)], check=False)
        # our fallback route, identified by subnet + metric
        _run(
            ["ip", "route", "del", "unreachable", f"{self.subnet}.{i}.0/24", "metric", str(FALLBACK_ROUTE_METRIC)],
            check=False,
        )

    def cleanup_stale(self) -> None:
        """Remove everything of a (crashed) lab with this prefix: processes, namespaces,
        veths, routes; and the per-host dirs in this workdir."""
        self._teardown(remove_files=True)

    def teardown(self, remove_files: bool = True) -> None:
        """Kill QEMU, libvirtd, virtlogd and holders of the lab, delete namespaces,
        veths and routes, and (by default) the per-host dirs. Idempotent."""
        self._teardown(remove_files)

    def _teardown(self, remove_files: bool) -> None:
        indexes = self._stale_indexes()
        # thaw frozen daemons first is not needed: SIGKILL works on stopped processes
        self._kill_lab_processes(indexes)
        for i in sorted(indexes):
            self._remove_network(i)
        # our unreachable routes of hosts not otherwise found (e.g. netns deleted by hand)
        res = _run(["ip", "-o", "route", "show", "type", "unreachable"], check=False)
        for line in res.stdout.splitlines():
            m = re.match(rf"unreachable ({re.escape(self.subnet)}\.(\d+)\.0/24) .*metric {FALLBACK_ROUTE_METRIC}\b", line)
            if m and int(m.group(2)) in indexes:
                _run(
                    ["ip", "route", "del", "unreachable", m.group(1), "metric", str(FALLBACK_ROUTE_METRIC)], check=False
                )
        self._holders.clear()
        self.hosts = []
        if remove_files and self.workdir.is_dir():
            for i in indexes | {int(p.name[1:]) for p in self.workdir.glob("h*") if p.name[1:].isdigit()}:
                d = self.workdir / f"h{i}"
                if d.is_dir() and not d.is_symlink():
                    shutil.rmtree(d, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                (self.workdir / STATE_FILE).unlink()
        elif self.workdir.is_dir() and (self.workdir / STATE_FILE).exists():
            with contextlib.suppress(OSError):
                (self.workdir / STATE_FILE).unlink()

    def __enter__(self) -> HostLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()


# --------------------------------------------------------------------------- holder


def _holder_main(root: str) -> int:
    """The per-host namespace holder (runs inside the host's namespaces).

    It keeps the namespaces alive, is a child subreaper, so libvirtd, virtlogd and the
    QEMU processes (which libvirt double-forks) are reaped as soon as they exit -- the
    machine's init may reap late, and libvirt waits for a killed QEMU pid to vanish --
    and it runs the daemons on request (JSON lines on the holder.ctl FIFO)."""
    import ctypes  # noqa: PLC0415
    import select  # noqa: PLC0415

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        print(f"hostlab holder: prctl: {os.strerror(ctypes.get_errno())}", file=sys.stderr, flush=True)
        return 1
    rootp = Path(root)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_a: None)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    ctl = os.open(rootp / _HOLDER_CTL, os.O_RDWR | os.O_NONBLOCK)  # RDWR: never EOF
    results = rootp / _HOLDER_RESULTS
    devnull = os.open(os.devnull, os.O_RDONLY)

    def reap() -> None:
        while True:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    def run(line: bytes) -> None:
        req_id = "invalid"
        try:
            req = json.loads(line)
            req_id = str(req["id"])
            with open(req["log"], "ab") as log:
                pid = os.posix_spawn(
                    req["argv"][0],
                    req["argv"],
                    req["env"],
                    file_actions=[
                        (os.POSIX_SPAWN_DUP2, devnull, 0),
                        (os.POSIX_SPAWN_DUP2, log.fileno(), 1),
                        (os.POSIX_SPAWN_DUP2, log.fileno(), 2),
                    ],
                    setsid=True,
                )
            _, status = os.waitpid(pid, 0)
            rc = str(os.waitstatus_to_exitcode(status))
        except Exception as exc:  # noqa: BLE001
            rc = f"holder error: {exc!r}"
        tmp = results / f".{req_id}.tmp"
        tmp.write_text(rc + "\n")
        tmp.replace(results / req_id)

    tmp = rootp / "holder.pid.tmp"
    tmp.write_text(f"{os.getpid()}\n")
    tmp.replace(rootp / "holder.pid")
    buf = b""
    while True:
        ready, _, _ = select.select([ctl, wake_r], [], [])
        if wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                while os.read(wake_r, 512):
                    pass
        reap()
        if ctl in ready:
            with contextlib.suppress(BlockingIOError):
                buf += os.read(ctl, 65536)
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    run(line)
            reap()


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.system.hostlab", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start a lab and leave it running; prints its URIs as JSON")
    up.add_argument("--count", type=int, default=2)
    up.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    up.add_argument("--prefix", default=DEFAULT_PREFIX)
    up.add_argument("--network-on", default="", help="comma separated host indexes that get the 'default' network")
    down = sub.add_parser("down", help="tear a lab down (also a crashed one)")
    down.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    down.add_argument("--prefix", default=None, help="default: from the workdir's state, else 'lc'")
    down.add_argument("--keep-files", action="store_true")
    st = sub.add_parser("status", help="print the lab's hosts and whether libvirtd runs")
    st.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    args = ap.parse_args(argv)

    if args.cmd == "up":
        network_on = {int(x) for x in args.network_on.split(",") if x.strip()}
        lab = HostLab(args.workdir, args.prefix)
        t0 = time.monotonic()
        lab.start(args.count, network_on)
        out = lab.summary()
        out["start_seconds"] = round(time.monotonic() - t0, 2)
        print(json.dumps(out, indent=2))
        return 0
    if args.cmd == "down":
        prefix = args.prefix
        if prefix is None:
            try:
                prefix = json.loads((args.workdir.absolute() / STATE_FILE).read_text())["prefix"]
            except (OSError, ValueError, KeyError):
                prefix = DEFAULT_PREFIX
        HostLab(args.workdir, prefix).teardown(remove_files=not args.keep_files)
        return 0
    if args.cmd == "status":
        try:
            lab = HostLab.attach(args.workdir)
        except FileNotFoundError:
            print(json.dumps({"running": False}))
            return 1
        out = lab.summary()
        for hj, h in zip(out["hosts"], lab.hosts, strict=True):
            hj["libvirtd_pid"] = lab._libvirtd_pid_or_none(h)
        print(json.dumps(out, indent=2))
        return 0
    return 2


if __name__ == "__main__":
    if sys.argv[1:2] == [_HOLDER_ARG]:
        sys.exit(_holder_main(sys.argv[2]))
    sys.exit(main())
