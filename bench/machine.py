"""What the figures were measured on."""
from __future__ import annotations

import os
import platform
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _first_line(cmd: list[str]) -> str:
    if not shutil.which(cmd[0]) and not Path(cmd[0]).exists():
        return "not installed"
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) \
        else "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> str:
    try:
        text = Path("/proc/meminfo").read_text()
        kib = int(re.search(r"MemTotal:\s+(\d+)", text).group(1))
        return f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, AttributeError):
        return "unknown"


def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--",
                                "loucloud", "config.py", "wsgi.py"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + (" (with uncommitted changes to the app)" if dirty else "")
    except OSError:
        return "unknown"


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def describe(kvm: bool) -> list[tuple[str, str]]:
    import libvirt

    lv = libvirt.getVersion()
    return [
        ("CPU", f"{cpu_model()}, {os.cpu_count()} cores"
                + (" (a virtual machine)" if "hypervisor" in Path("/proc/cpuinfo").read_text()
                   else "")),
        ("memory", memory_gib()),
        ("kernel", f"{platform.system()} {platform.release()}"),
        ("libvirt", _first_line(["/usr/sbin/libvirtd", "--version"])
         + f"; client library {lv // 1_000_000}.{lv // 1000 % 1000}.{lv % 1000}, "
         + f"libvirt-python {_dist_version('libvirt-python')}"),
        ("QEMU", _first_line(["qemu-system-x86_64", "--version"])),
        ("virtualisation", "KVM (/dev/kvm usable)" if kvm else
         "TCG (software emulation: /dev/kvm missing or unusable)"),
        ("Python", f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}"),
        ("MariaDB", _first_line(["/usr/sbin/mariadbd", "--version"])),
        ("Apache", _first_line(["/usr/sbin/apache2", "-v"])),
        ("LouCloud", git_revision()),
    ]
