#!/usr/bin/env python3
"""Can KVM really run guests here? Boots a small disk under QEMU with -accel kvm —
SeaBIOS, then SYSLINUX (the boot loader of the images `manage.py images build` makes),
which switches between real and protected mode as every boot loader does — and waits
for its banner on the serial port.

Opening /dev/kvm and creating a VM is not enough: under some nested hypervisors the
boot loader of every guest stops at once with "KVM internal error ... emulation
failure" (seen on this project's CI machines).

    python3 scripts/kvm_probe.py           exit 0: KVM runs guests; 1: it does not
    python3 scripts/kvm_probe.py --accel tcg   the same disk under TCG (a self-check)

Used by scripts/setup-system.sh (make run) and the test lab (tests/support/lab): where
KVM cannot run guests, libvirt is kept from offering it, and VMs use TCG."""
from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

BANNER = b"SYSLINUX"
NEEDED = ("qemu-system-x86_64", "mkfs.vfat", "mcopy", "syslinux")


def _disk(tmp: str) -> str:
    disk = os.path.join(tmp, "probe.img")
    cfg = os.path.join(tmp, "syslinux.cfg")
    with open(cfg, "w") as f:
        f.write("SERIAL 0 115200\nPROMPT 0\nDEFAULT probe\nLABEL probe\n  KERNEL /none\n")
    for argv in (["mkfs.vfat", "-C", disk, "1440"], ["mcopy", "-i", disk, cfg, "::/"],
                 ["syslinux", "--install", disk]):
        subprocess.run(argv, check=True, capture_output=True)
    return disk


def probe(accel: str = "kvm", timeout: float = 15.0) -> tuple[bool, str]:
    missing = [p for p in NEEDED if not shutil.which(p)]
    if missing:
        return False, f"cannot probe: {', '.join(missing)} missing"
    if accel == "kvm" and not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "/dev/kvm is missing or not usable"
    with tempfile.TemporaryDirectory(prefix="kvm-probe-") as tmp:
        argv = ["qemu-system-x86_64", "-accel", accel, "-m", "64", "-nodefaults",
                "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot",
                "-drive", f"file={_disk(tmp)},format=raw,if=floppy", "-boot", "a"]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = _watch(proc, timeout)
    if BANNER in out:
        return True, f"{accel.upper()} runs guests"
    text = err.decode(errors="replace")
    if "internal error" in text.lower():
        return False, f"{accel.upper()} stops guests: KVM internal error (emulation failure)"
    return False, f"{accel.upper()} did not boot a guest in {timeout:g} s"


def _watch(proc: subprocess.Popen, timeout: float) -> tuple[bytes, bytes]:
    """What QEMU printed until the banner, an error, its end or the timeout."""
    out, err = b"", b""
    deadline = time.monotonic() + timeout
    streams = {proc.stdout.fileno(): "out", proc.stderr.fileno(): "err"}
    try:
        while streams and time.monotonic() < deadline:
            ready, _, _ = select.select(list(streams), [], [], 0.2)
            for fd in ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    del streams[fd]
                elif streams[fd] == "out":
                    out += chunk
                else:
                    err += chunk
            if BANNER in out or b"internal error" in err.lower():
                break
    finally:
        proc.kill()
        proc.wait()
    return out, err


if __name__ == "__main__":
    accel = sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "--accel" else "kvm"
    ok, why = probe(accel)
    print(why)
    sys.exit(0 if ok else 1)
