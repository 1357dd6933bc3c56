"""The benchmarks' side of the host lab (tests/support/lab, used as it is): the
faults a host can have, undone whatever happens, and many domains defined in bulk with
LouCloud's own XML builder."""
from __future__ import annotations

import concurrent.futures
import contextlib
import os
import subprocess
import time
import uuid as uuidlib
from pathlib import Path

import libvirt

from loucloud.virt.xml import DomainSpec, build_domain
from tests.support.lab import FALLBACK_ROUTE_METRIC, HostLab, LabHost

PREFIX = "lcb"
# Its own prefix and addresses: the benchmarks can run beside the test suite's lab.
SUBNET = "10.240"
# A boot sector that halts the CPU (cli; hlt; jmp back): a guest that boots in a moment
# and then costs nothing, where a blank disk keeps SeaBIOS busy (~40 % of a core for
# ~10 s per boot attempt, which would disturb every figure on a 2-core machine).
BOOT_SECTOR = bytes([0xFA, 0xF4, 0xEB, 0xFD]).ljust(510, b"\0") + b"\x55\xaa"
# A MAC address nobody has: frames sent to it are dropped by the host's side of the link.
NOWHERE_MAC = "02:00:5e:00:00:99"
NS = uuidlib.UUID("6c6f7563-6c6f-7564-2d62-656e63680000")

libvirt.registerErrorHandler(lambda *_: None, None)


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], check=check, capture_output=True, timeout=30)


class BenchLab:
    """A HostLab of ``count`` hosts whose faults are recorded, so that ``teardown``
    undoes the ones the lab itself would not (routes, neighbour entries)."""

    def __init__(self, workdir: Path, count: int = 4):
        self.lab = HostLab(workdir, PREFIX, SUBNET)
        self.count = count
        self.hosts: list[LabHost] = []
        self._faults: dict[int, str] = {}

    def start(self) -> list[LabHost]:
        self._remove_stale_faults()
        self.hosts = self.lab.start(count=self.count)
        return self.hosts

    def qemu_pids(self) -> list[int]:
        """The QEMU processes of this lab's hosts (found by network namespace)."""
        inodes = set()
        for h in self.hosts:
            with contextlib.suppress(OSError):
                inodes.add(os.stat(f"/run/netns/{h.netns}").st_ino)
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if (entry / "comm").read_text().startswith("qemu-system") and \
                        os.stat(entry / "ns" / "net").st_ino in inodes:
                    pids.append(int(entry.name))
            except OSError:
                continue
        return pids

    def settle(self, timeout: float = 60, idle: float = 0.05) -> float:
        """Wait until every guest of the lab has finished booting (each QEMU under
        ``idle`` of a core over half a second). Returns the seconds waited."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            pids = self.qemu_pids()
            before = {p: _cpu_seconds(p) for p in pids}
            time.sleep(0.5)
            if all(_cpu_seconds(p) - before[p] < idle * 0.5 for p in pids):
                break
        return time.monotonic() - start

    def teardown(self) -> None:
        for index in list(self._faults):
            with contextlib.suppress(Exception):
                self.heal(self.hosts[index - 1])
        self._remove_stale_faults()
        self.lab.teardown()

    def _remove_stale_faults(self) -> None:
        """A crashed earlier run may have left a blackhole route (the lab's teardown
        removes only its 'unreachable' ones); neighbour entries go with the links."""
        out = subprocess.run(["ip", "-o", "route", "show", "type", "blackhole"],
                             capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) > 1 and parts[1].startswith(f"{SUBNET}.") and \
                    f"metric {FALLBACK_ROUTE_METRIC}" in line:
                _ip("route", "del", "blackhole", parts[1], "metric",
                    str(FALLBACK_ROUTE_METRIC), check=False)

    # -- faults ----------------------------------------------------------------------
    def link_down(self, h: LabHost) -> None:
        """The lab's link_down: the root side of the link is down; the lab's fallback
        'unreachable' route makes connects fail at once (No route to host)."""
        self._faults[h.index] = "link"
        self.lab.link_down(h)

    def blackhole_route(self, h: LabHost) -> None:
        """The link down and the fallback route replaced by a 'blackhole' one. On Linux
        a blackhole route fails connects at once too (EINVAL); see drop_frames."""
        self._faults[h.index] = "blackhole"
        self.lab.link_down(h)
        _ip("route", "replace", "blackhole", f"{SUBNET}.{h.index}.0/24", "metric",
            str(FALLBACK_ROUTE_METRIC))

    def drop_frames(self, h: LabHost) -> None:
        """A black-holed link where connects hang: the link stays up, but the host's
        address resolves (permanently) to a MAC address nobody has, so every packet is
        silently dropped — a dead cable or a crashed machine, as TCP sees it."""
        self._faults[h.index] = "drop"
        _ip("neigh", "replace", h.address, "lladdr", NOWHERE_MAC, "dev", h.veth_root,
            "nud", "permanent")

    def freeze(self, h: LabHost) -> None:
        """libvirtd stopped with SIGSTOP: TCP connects succeed, nothing answers."""
        self._faults[h.index] = "freeze"
        self.lab.freeze(h)

    def heal(self, h: LabHost) -> None:
        fault = self._faults.pop(h.index, None)
        if fault == "link":
            self.lab.link_up(h)
        elif fault == "blackhole":
            _ip("route", "replace", "unreachable", f"{SUBNET}.{h.index}.0/24", "metric",
                str(FALLBACK_ROUTE_METRIC))
            self.lab.link_up(h)
        elif fault == "drop":
            _ip("neigh", "del", h.address, "dev", h.veth_root, check=False)
        elif fault == "freeze":
            self.lab.thaw(h)


# -- images -------------------------------------------------------------------------
def boot_image(lab: HostLab, h: LabHost, name: str, size: int, fmt: str = "raw") -> str:
    """A sparse image whose first sector is BOOT_SECTOR; returns its path on the host."""
    if fmt == "raw":
        path = lab.make_image(h, name, size, fmt="raw")
        with open(h.host_path(path), "r+b") as f:
            f.write(BOOT_SECTOR)
        return path
    raw = boot_image(lab, h, name + ".boot.raw", 1 << 20)
    path = raw.rsplit("/", 1)[0] + "/" + name
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", fmt,
                    str(h.host_path(raw)), str(h.host_path(path))], check=True, timeout=60)
    subprocess.run(["qemu-img", "resize", "-q", "-f", fmt, str(h.host_path(path)),
                    str(size)], check=True, timeout=60)
    return path


# -- many domains ------------------------------------------------------------------------
def domain_uuid(host_index: int, k: int) -> str:
    return str(uuidlib.uuid5(NS, f"h{host_index}-{k}"))


def vm_name(host_index: int, k: int) -> str:
    return f"vm-{k:05d}-h{host_index}"


class Population:
    """Domains defined on lab hosts, named deterministically: host i's k-th domain has
    uuid ``domain_uuid(i, k)``. Domain 0 of every host that holds any runs (a real QEMU
    with 64 MiB); the others are defined and shut off."""

    def __init__(self, lab: BenchLab, domain_type: str):
        self.lab = lab
        self.domain_type = domain_type
        self.counts = {h.index: 0 for h in lab.hosts}
        self._conns = {h.index: libvirt.open(h.uri) for h in lab.hosts}
        self._run_disk: dict[int, str] = {}

    def close(self) -> None:
        for conn in self._conns.values():
            with contextlib.suppress(libvirt.libvirtError):
                conn.close()

    def spec(self, h: LabHost, k: int) -> DomainSpec:
        uuid = domain_uuid(h.index, k)
        disk = self._run_disk[h.index] if k == 0 else \
            f"/var/lib/libvirt/loucloud/lc-{uuid}.qcow2"
        return DomainSpec(name=f"lc-{uuid}", uuid=uuid, title=vm_name(h.index, k), vcpus=1,
                          memory_mib=64, disk_path=disk, domain_type=self.domain_type,
                          arch="x86_64", vnc_listen=h.address, owner="bench")

    def resize(self, target: dict[int, int]) -> None:
        """Define or undefine domains until host i holds target[i] (hosts in parallel)."""
        with concurrent.futures.ThreadPoolExecutor(len(self.lab.hosts)) as pool:
            futures = [pool.submit(self._resize_host, h, target.get(h.index, 0))
                       for h in self.lab.hosts]
            for f in futures:
                f.result()

    def _conn(self, h: LabHost) -> libvirt.virConnect:
        """The connection to host h, opened again when a fault (libvirtd killed or
        restarted) has closed it."""
        conn = self._conns[h.index]
        alive = False
        with contextlib.suppress(libvirt.libvirtError):
            alive = conn.isAlive() == 1
        if not alive:
            with contextlib.suppress(libvirt.libvirtError):
                conn.close()
            conn = self._conns[h.index] = libvirt.open(h.uri)
        return conn

    def _resize_host(self, h: LabHost, want: int) -> None:
        conn, have = self._conn(h), self.counts[h.index]
        if want > have and h.index not in self._run_disk:
            self._run_disk[h.index] = boot_image(self.lab.lab, h, "bench-running-0.qcow2",
                                                 64 << 20, fmt="qcow2")
        for k in range(have, want):
            dom = conn.defineXML(build_domain(self.spec(h, k)))
            if k == 0:
                dom.create()
        for k in range(want, have):
            dom = conn.lookupByUUIDString(domain_uuid(h.index, k))
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(0)
        self.counts[h.index] = want

    def remove_all(self) -> None:
        self.resize({})
