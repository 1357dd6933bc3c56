"""The per-host namespace holder of the host lab.

Run by path as ``python -I -S holder.py _hostlab_holder <host root>`` inside the host's
namespaces (see processes.py), so it must import nothing but the standard library."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path

HOLDER_ARG = "_hostlab_holder"
HOLDER_CTL = "holder.ctl"  # FIFO: JSON requests to the holder, one a line
HOLDER_RESULTS = "holder-results"  # one file per request: the exit code


def holder_main(root: str) -> int:
    """The per-host namespace holder (runs inside the host's namespaces).

    It keeps the namespaces alive, is a child subreaper, so libvirtd, virtlogd and the
    QEMU processes (which libvirt double-forks) are reaped as soon as they exit -- the
    machine's init may reap late, and libvirt waits for a killed QEMU pid to vanish --
    and it runs the daemons on request (JSON lines on the holder.ctl FIFO)."""
    import ctypes  # only the holder needs these
    import select

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
    ctl = os.open(rootp / HOLDER_CTL, os.O_RDWR | os.O_NONBLOCK)  # RDWR: never EOF
    results = rootp / HOLDER_RESULTS
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


if __name__ == "__main__":
    if sys.argv[1:2] != [HOLDER_ARG] or len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} {HOLDER_ARG} <host root>")
    sys.exit(holder_main(sys.argv[2]))
