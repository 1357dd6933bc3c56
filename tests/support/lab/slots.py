"""Per-run host lab slots, so that two test runs on one machine never share a lab.

A slot is a (prefix, subnet, workdir) triple. A run takes one by locking a file for
each of the three under LOCK_DIR (``fcntl.flock``, non-blocking) and keeps the locks
while its lab lives; the kernel drops them when the run's process ends, however it ends.
The next run that takes a freed slot cleans up what a crashed run left there, and
never touches the namespaces, veths, routes or files of a slot it does not hold.

Slots: prefixes ``lt0`` .. ``lt7`` with subnets 10.232 .. 10.239 and workdirs
``/tmp/loucloud-hostlab-pytest-<prefix>``. They keep clear of the defaults of
``python -m tests.support.lab up`` (prefix "lc", 10.231) and of the benchmarks' lab
("lcb", 10.240), and a slot whose subnet some other interface already uses is passed
over.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .base import SUBNET, HostLabError, run

LOCK_DIR = Path("/run/loucloud-hostlab")
SLOT_COUNT = 8
SLOT_PREFIX = "lt"
SLOT_FIRST_SUBNET = 232  # lt<n> gets 10.<232 + n>


@dataclass
class LabSlot:
    prefix: str
    subnet: str
    workdir: Path
    _fds: list[int] = field(default_factory=list, repr=False)

    def release(self) -> None:
        """Give the slot back (closing the lock files drops the locks). Idempotent."""
        while self._fds:
            os.close(self._fds.pop())


def default_workdir(prefix: str) -> Path:
    return Path(f"/tmp/loucloud-hostlab-pytest-{prefix}")


def acquire_slot(env: Mapping[str, str] = os.environ, lock_dir: Path = LOCK_DIR) -> LabSlot:
    """Take a free slot for this process and keep it until ``release()`` or exit.

    LOUCLOUD_HOSTLAB_PREFIX / _SUBNET / _DIR in ``env`` fix that part of the slot (a
    prefix without a subnet gets 10.231, the lab's own default); the rest is chosen.
    Raises HostLabError if no slot is free (explicit values in use by another run, or
    all SLOT_COUNT slots busy)."""
    prefix, subnet, workdir = (env.get(f"LOUCLOUD_HOSTLAB_{k}") or None for k in ("PREFIX", "SUBNET", "DIR"))
    if prefix:
        candidates = [(prefix, subnet or SUBNET)]
    else:
        candidates = [(f"{SLOT_PREFIX}{n}", subnet or f"10.{SLOT_FIRST_SUBNET + n}") for n in range(SLOT_COUNT)]
    lock_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    busy: list[str] = []
    for cand_prefix, cand_subnet in candidates:
        cand_dir = Path(workdir) if workdir else default_workdir(cand_prefix)
        if not prefix and not subnet and _subnet_used_by_others(cand_prefix, cand_subnet):
            busy.append(f"{cand_subnet} has addresses of another lab")
            continue
        slot = LabSlot(cand_prefix, cand_subnet, cand_dir.absolute())
        dir_key = "dir-" + hashlib.sha1(str(slot.workdir).encode()).hexdigest()[:16]
        for key in (f"prefix-{cand_prefix}", f"subnet-{cand_subnet}", dir_key):
            holder = _try_lock(lock_dir / f"{key}.lock", slot)
            if holder is not None:
                busy.append(f"{key} held by pid {holder or '?'}")
                slot.release()
                break
        else:
            return slot
    raise HostLabError("no free host lab slot for this run: " + "; ".join(busy))


def _try_lock(path: Path, slot: LabSlot) -> str | None:
    """Lock ``path`` for ``slot``; None on success, else the holder's pid as written."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        except OSError:
            holder = ""
        os.close(fd)
        return holder
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    slot._fds.append(fd)
    return None


def _subnet_used_by_others(prefix: str, subnet: str) -> bool:
    """True if an interface other than this prefix's lab veths has an address in ``subnet``
    (a lab started by hand or by the benchmarks, which take no slot)."""
    ours = re.compile(rf"{re.escape(prefix)}h\d+[rn]")
    res = run(["ip", "-o", "-4", "addr", "show"], check=False)
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[3].startswith(f"{subnet}.") and not ours.fullmatch(parts[1].split("@")[0]):
            return True
    return False
