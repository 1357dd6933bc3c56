"""What every part of the host lab shares: its constants, its error, the LabHost record
and the two helpers that run a command and show a log's tail."""

from __future__ import annotations

import posixpath
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_PREFIX = "lc"
DEFAULT_WORKDIR = Path("/tmp/loucloud-hostlab")
SUBNET = "10.231"
LIBVIRT_TCP_PORT = 16509
MAX_HOSTS = 32
# Host i's migration address is <subnet>.MIGRATION_NET.<i>: on the host's loopback,
# reached from each other host over a veth pair of their own (namespaces.py).
MIGRATION_NET = 250
# Metric of the per-host "unreachable" fallback route (see link_down()).
FALLBACK_ROUTE_METRIC = 4231
STATE_FILE = "lab.json"

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

DAEMON_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
REQUIRED_TOOLS = ("ip", "nsenter", "unshare", "setsid", "mount", "umount", "qemu-img")
REQUIRED_DAEMONS = ("libvirtd", "virtlogd")


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
    migration_address: str = ""  # "10.231.250.1": where the other hosts reach it
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
            "migration_address": self.migration_address,
            "has_default_network": self.has_default_network,
        }


def run(cmd: list[str], *, check: bool = True, timeout: float = 60.0, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run a command with the daemons' PATH; raises HostLabError if ``check`` and it fails."""
    env = kw.pop("env", None) or {"PATH": DAEMON_PATH, "LC_ALL": "C"}
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


def tail(path: Path, lines: int = 30) -> str:
    try:
        with open(path, errors="replace") as f:
            data = f.readlines()
    except OSError:
        return f"(no {path})"
    return "".join(data[-lines:]).rstrip() or f"({path} is empty)"
