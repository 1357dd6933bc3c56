"""Processes of the host lab: /proc checks, pid files, the per-host holder process
(started here, its code in holder.py) and the daemons it runs on request, and finding
and killing everything that lives in a lab's namespaces."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from . import holder
from .base import BOUND_DIRS, DAEMON_PATH, KILL_TIMEOUT, HostLabError, LabHost, tail
from .holder import HOLDER_ARG, HOLDER_CTL, HOLDER_RESULTS
from .namespaces import ns_id


def starttime(pid: int) -> int | None:
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


def alive(pid: int | None, start: int | None = None) -> bool:
    if not pid:
        return False
    st = starttime(pid)
    if st is None:
        return False
    return start is None or st == start


def cmdline(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def is_holder(pid: int | None, start: int | None = None) -> bool:
    return alive(pid, start) and HOLDER_ARG.encode() in cmdline(pid or 0)


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def read_pidfile(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class ProcessesMixin:
    """HostLab's holders and daemons. Uses the lab's ``_holders`` ({index: (pid,
    starttime)}), ``_lock`` and ``_netns()``."""

    _holders: dict[int, tuple[int, int]]

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
        if not self.kvm_usable():
            # KVM cannot run guests on this machine (scripts/kvm_probe.py): the host
            # must not offer it, so its VMs use TCG.
            lines.append("if [ -e /dev/kvm ]; then mount --bind /dev/null /dev/kvm; fi")
        argv = [sys.executable, "-I", "-S", str(Path(holder.__file__).resolve()), HOLDER_ARG, str(h.root)]
        lines.append("exec " + " ".join(q(a) for a in argv))
        return "\n".join(lines) + "\n"

    def _start_holder(self, h: LabHost) -> None:
        script = h.root / "holder.sh"
        script.write_text(self._holder_script(h))
        os.mkfifo(h.root / HOLDER_CTL, 0o600)
        (h.root / HOLDER_RESULTS).mkdir()
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
                env={"PATH": DAEMON_PATH, "LC_ALL": "C"},
                check=True,
                timeout=30,
            )
        deadline = time.monotonic() + 15
        while True:
            pid = read_pidfile(pidfile)
            if pid and is_holder(pid):
                st = starttime(pid)
                assert st is not None
                with self._lock:
                    self._holders[h.index] = (pid, st)
                return
            if time.monotonic() > deadline:
                raise HostLabError(f"namespace holder of {h.name} did not come up:\n{tail(log)}")
            time.sleep(0.01)

    def _holder_pid(self, h: LabHost) -> int:
        entry = self._holders.get(h.index)
        if not entry or not alive(*entry):
            raise HostLabError(f"namespace holder of {h.name} is gone (see {h.root / 'holder.log'})")
        return entry[0]

    def _daemon(self, h: LabHost, argv: list[str], logname: str, daemon_log: str, timeout: float = 60.0) -> None:
        """Run a self-daemonizing libvirt daemon as a child of the host's holder (so it
        and the QEMU processes it spawns are reaped at once when they exit) and wait
        for the daemon's foreground part to report success."""
        self._holder_pid(h)
        log = h.root / logname
        exe = shutil.which(argv[0], path=DAEMON_PATH)
        if not exe:
            raise HostLabError(f"no {argv[0]} binary")
        req_id = uuid.uuid4().hex
        request = {
            "id": req_id,
            "argv": [exe] + argv[1:],
            "env": {"PATH": DAEMON_PATH, "LC_ALL": "C", "HOME": "/root"},
            "log": str(log),
        }
        data = (json.dumps(request) + "\n").encode()
        assert len(data) < 4096  # one atomic FIFO write
        try:
            fd = os.open(h.root / HOLDER_CTL, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise HostLabError(f"namespace holder of {h.name} does not listen: {exc}") from None
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        result = h.root / HOLDER_RESULTS / req_id
        deadline = time.monotonic() + timeout
        while not result.exists():
            if time.monotonic() > deadline:
                raise HostLabError(
                    f"{argv[0]} of {h.name} did not start within {timeout}s:\n{tail(log)}\n"
                    f"{daemon_log} tail:\n{tail(h.host_path(daemon_log))}"
                )
            self._holder_pid(h)
            time.sleep(0.005)
        rc = result.read_text().strip()
        result.unlink()
        if rc != "0":
            raise HostLabError(
                f"{argv[0]} of {h.name} failed to start ({rc}):\n{tail(log)}\n"
                f"{daemon_log} tail:\n{tail(h.host_path(daemon_log))}"
            )

    def _lab_processes(self, indexes: Iterable[int]) -> list[int]:
        net_ids: set[tuple[int, int]] = set()
        mnt_ids: set[tuple[int, int]] = set()
        for i in indexes:
            nid = ns_id(f"/run/netns/{self._netns(i)}")
            if nid:
                net_ids.add(nid)
            entry = self._holders.get(i)
            if entry and is_holder(*entry):
                for kind, ids in (("net", net_ids), ("mnt", mnt_ids)):
                    nid = ns_id(f"/proc/{entry[0]}/ns/{kind}")
                    if nid:
                        ids.add(nid)
        if not net_ids and not mnt_ids:
            return []
        me = os.getpid()
        root_net, root_mnt = ns_id("/proc/1/ns/net"), ns_id("/proc/1/ns/mnt")
        net_ids.discard(root_net)  # paranoia: never kill the whole machine
        mnt_ids.discard(root_mnt)
        pids = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == me:
                continue
            pid = int(name)
            if ns_id(f"/proc/{pid}/ns/net") in net_ids or ns_id(f"/proc/{pid}/ns/mnt") in mnt_ids:
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
                    pids = [p for p in pids if not is_holder(p)]
                if not pids:
                    break
                if time.monotonic() > deadline:
                    desc = ", ".join(f"{p}({comm(p)})" for p in pids)
                    raise HostLabError(f"lab processes survive SIGKILL: {desc}")
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.01)
