"""The HostLab: N libvirtd hosts, started, looked up, recorded in a state file and torn
down again; the parts live in namespaces.py, processes.py and libvirtd.py."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import posixpath
import re
import shutil
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Self

from .base import (
    DAEMON_PATH,
    DEFAULT_PREFIX,
    DEFAULT_WORKDIR,
    IMAGES_DIR_ON_HOST,
    MAX_HOSTS,
    MIGRATION_NET,
    REAL_ETC_LIBVIRT,
    REQUIRED_DAEMONS,
    REQUIRED_TOOLS,
    STATE_FILE,
    SUBNET,
    HostLabError,
    LabHost,
    run,
)
from .libvirtd import LibvirtdMixin, libvirt_module, probe_kvm
from .namespaces import NamespacesMixin, namespaces_unavailable_reason
from .processes import ProcessesMixin, is_holder
from .sshd import SshdMixin


class HostLab(NamespacesMixin, ProcessesMixin, LibvirtdMixin, SshdMixin):
    """N libvirtd hosts in their own network/mount/UTS namespaces. See the package docs."""

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
        for d in REQUIRED_DAEMONS:
            if not shutil.which(d, path=DAEMON_PATH):
                return f"no {d} binary (install libvirt-daemon-system)"
        if not shutil.which("qemu-system-x86_64", path=DAEMON_PATH):
            return "no qemu-system-x86_64 (install qemu-system-x86)"
        for t in REQUIRED_TOOLS:
            if not shutil.which(t, path=DAEMON_PATH):
                return f"no {t} binary (install iproute2, util-linux, coreutils, qemu-utils)"
        if not (REAL_ETC_LIBVIRT / "libvirtd.conf").exists():
            return "no /etc/libvirt/libvirtd.conf (install libvirt-daemon-system)"
        try:
            libvirt_module()
        except ImportError as exc:
            return f"the libvirt Python module is not importable: {exc}"
        return namespaces_unavailable_reason()

    @classmethod
    def kvm_usable(cls) -> bool:
        """True if /dev/kvm can really create a VM with a vCPU (QEMU runs as root in the lab)."""
        if cls._kvm_cache is None:
            cls._kvm_cache = probe_kvm()
        return cls._kvm_cache

    @classmethod
    def accel(cls) -> str:
        """"KVM" or "TCG": what the lab's guests run with."""
        return "KVM" if cls.kvm_usable() else "TCG"

    # ------------------------------------------------------------ naming

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
            migration_address=f"{self.subnet}.{MIGRATION_NET}.{i}",
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
            self._create_migration_links(hosts)
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

    def _boot_host(self, h: LabHost, with_network: bool) -> None:
        self._start_holder(h)
        self._start_virtlogd(h)
        self.start_libvirtd(h)
        if with_network:
            self._define_default_network(h)

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
        run(["qemu-img", "create", "-q", "-f", fmt, str(local), str(int(size_bytes))])
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
        """A HostLab for a lab started earlier (e.g. by ``lab up``) from its state file."""
        workdir = Path(workdir).absolute()
        state = json.loads((workdir / STATE_FILE).read_text())
        lab = cls(workdir, state["prefix"], state.get("subnet", SUBNET))
        for hj in state["hosts"]:
            h = lab._make_host(int(hj["index"]))
            h.has_default_network = bool(hj.get("has_default_network"))
            lab.hosts.append(h)
        for i, (pid, st) in state.get("holders", {}).items():
            if is_holder(pid, st):
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
        found |= self._network_indexes()
        with contextlib.suppress(Exception):
            state = json.loads((self.workdir / STATE_FILE).read_text())
            if state.get("prefix") == self.prefix:
                for hj in state.get("hosts", []):
                    found.add(int(hj["index"]))
                for i, (pid, st) in state.get("holders", {}).items():
                    if is_holder(pid, st):
                        self._holders.setdefault(int(i), (pid, st))
        return found

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
        self._remove_fallback_routes(indexes)
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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()
