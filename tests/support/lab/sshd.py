"""An OpenSSH server on a lab host, for qemu+ssh:// (the transport deploy/README.md
recommends): sshd runs in the host's namespaces, so a client that logs in as root
reaches that host's libvirtd through its own socket (libvirt's client runs
virt-ssh-helper, or nc, over the session), exactly as on a real hypervisor. Key
authentication only; its own host key, configuration and log in <host root>/sshd/."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .base import HostLabError, LabHost, tail
from .processes import read_pidfile

SSHD = "/usr/sbin/sshd"


@dataclass
class SshEndpoint:
    host: LabHost
    address: str
    port: int
    known_hosts_line: str  # "<address> ssh-ed25519 AAAA..."

    def uri(self, keyfile: str) -> str:
        """The libvirt URI of the host's system daemon over this server, as root."""
        return f"qemu+ssh://root@{self.address}/system?keyfile={keyfile}&no_tty=1"


def sshd_unavailable_reason() -> str | None:
    if not Path(SSHD).exists():
        return "no OpenSSH server (apt-get install openssh-server)"
    return None


class SshdMixin:
    """Host lab methods that start and stop sshd on a host (through its holder)."""

    def start_sshd(self, host: LabHost | int | str, authorized_key: str,
                   port: int = 22) -> SshEndpoint:
        h = self.host(host)  # type: ignore[attr-defined]
        reason = sshd_unavailable_reason()
        if reason:
            raise HostLabError(reason)
        d = h.root / "sshd"
        d.mkdir(exist_ok=True)
        key = d / "ssh_host_ed25519_key"
        if not key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                            f"{h.hostname} host key", "-f", str(key)], check=True,
                           capture_output=True, timeout=30)
        (d / "authorized_keys").write_text(authorized_key.strip() + "\n")
        config = d / "sshd_config"
        config.write_text(
            f"ListenAddress {h.address}\nPort {port}\nHostKey {key}\n"
            f"PidFile {d / 'sshd.pid'}\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\n"
            # the lab's files are under a world-writable /tmp: no owner checks
            "StrictModes no\nPrintMotd no\nLogLevel VERBOSE\nAllowTcpForwarding no\n"
            "X11Forwarding no\n")
        # sshd's privilege separation directory (shared with the root namespace)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            (d / "sshd.pid").unlink()
        # sshd forks into the background: the holder waits for its foreground part
        self._daemon(h, [SSHD, "-f", str(config), "-E", str(d / "sshd.log")],  # type: ignore[attr-defined]
                     "sshd-start.log", str(d / "sshd.log"))
        deadline = time.monotonic() + 10
        while read_pidfile(d / "sshd.pid") is None:
            if time.monotonic() > deadline:
                raise HostLabError(f"sshd of {h.name} wrote no pid file:\n{tail(d / 'sshd.log')}")
            time.sleep(0.05)
        public = (d / "ssh_host_ed25519_key.pub").read_text().split()
        line = f"{h.address} {public[0]} {public[1]}" if port == 22 else \
            f"[{h.address}]:{port} {public[0]} {public[1]}"
        return SshEndpoint(h, h.address, port, line)

    def stop_sshd(self, host: LabHost | int | str) -> None:
        h = self.host(host)  # type: ignore[attr-defined]
        pid = read_pidfile(h.root / "sshd" / "sshd.pid")
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
