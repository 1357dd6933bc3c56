"""Network plumbing of the host lab: one network namespace per host, a veth pair into
it, the addresses on both ends and the "unreachable" fallback route of each host."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import time
from pathlib import Path

from .base import FALLBACK_ROUTE_METRIC, LIBVIRT_TCP_PORT, HostLabError, LabHost, run


def ns_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def namespaces_unavailable_reason() -> str | None:
    """None if this machine can make the lab's namespaces, else why not."""
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
        res = run(["unshare", "--net", "--mount", "--uts", "--", "sh", "-c", probe], check=False, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot create namespaces: {exc}"
    if res.returncode != 0:
        return f"cannot create network/mount namespaces with a veth pair: {res.stderr.strip()}"
    return None


def tcp_probe(address: str, port: int, timeout: float) -> str:
    """'open', 'refused' or 'unreachable' (timeout / no route)."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return "open"
    except ConnectionRefusedError:
        return "refused"
    except OSError:
        return "unreachable"


class NamespacesMixin:
    """HostLab's network namespaces, veths and routes, named after ``prefix`` and
    addressed in ``subnet``."""

    prefix: str
    subnet: str

    def _netns(self, i: int) -> str:
        return f"{self.prefix}-h{i}"

    def _veth_root(self, i: int) -> str:
        return f"{self.prefix}h{i}r"

    def _veth_ns(self, i: int) -> str:
        return f"{self.prefix}h{i}n"

    def _check_addresses_free(self, hosts: list[LabHost]) -> None:
        res = run(["ip", "-o", "-4", "addr", "show"], check=False)
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

    def _create_network(self, h: LabHost) -> None:
        i = h.index
        run(["ip", "netns", "add", h.netns])
        run(["ip", "link", "add", h.veth_root, "type", "veth", "peer", "name", h.veth_ns, "netns", h.netns])
        # no IPv6 chatter on the lab links
        with contextlib.suppress(OSError):
            Path(f"/proc/sys/net/ipv6/conf/{h.veth_root}/disable_ipv6").write_text("1")
        run(["ip", "addr", "add", f"{h.root_address}/24", "dev", h.veth_root])
        run(["ip", "link", "set", h.veth_root, "up"])
        run(
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
        run(["nsenter", f"--net=/run/netns/{h.netns}", "--", "sh", "-c", ns_script])

    def _network_indexes(self) -> set[int]:
        """Host indexes of this prefix that have a network namespace or a veth."""
        found: set[int] = set()
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
        return found

    def _remove_network(self, i: int) -> None:
        veth = self._veth_root(i)
        if os.path.exists(f"/sys/class/net/{veth}"):
            run(["ip", "link", "del", veth], check=False)
        if os.path.exists(f"/run/netns/{self._netns(i)}"):
            run(["ip", "netns", "del", self._netns(i)], check=False)
        # our fallback route, identified by subnet + metric
        run(
            ["ip", "route", "del", "unreachable", f"{self.subnet}.{i}.0/24", "metric", str(FALLBACK_ROUTE_METRIC)],
            check=False,
        )

    def _remove_fallback_routes(self, indexes: set[int]) -> None:
        """Our unreachable routes of hosts not otherwise found (e.g. netns deleted by hand)."""
        res = run(["ip", "-o", "route", "show", "type", "unreachable"], check=False)
        for line in res.stdout.splitlines():
            m = re.match(rf"unreachable ({re.escape(self.subnet)}\.(\d+)\.0/24) .*metric {FALLBACK_ROUTE_METRIC}\b", line)
            if m and int(m.group(2)) in indexes:
                run(
                    ["ip", "route", "del", "unreachable", m.group(1), "metric", str(FALLBACK_ROUTE_METRIC)], check=False
                )

    def link_down(self, host: LabHost | int | str) -> None:
        """Take the root side veth down: connects to the host fail (no route to host)
        and established connections hang."""
        h = self.host(host)
        run(["ip", "link", "set", h.veth_root, "down"])

    def link_up(self, host: LabHost | int | str, timeout: float = 10.0) -> None:
        h = self.host(host)
        run(["ip", "link", "set", h.veth_root, "up"])
        deadline = time.monotonic() + timeout
        while tcp_probe(h.address, LIBVIRT_TCP_PORT, 0.5) == "unreachable":
            if time.monotonic() > deadline:
                raise HostLabError(f"{h.name} still unreachable after link_up")
            time.sleep(0.02)

    # -- the links between hosts (migrations) -------------------------------------------
    # Each host's migration address (<subnet>.250.<i>/32) sits on its loopback; every
    # pair of hosts has a veth pair of its own, directly between their two namespaces
    # (``<prefix>m<i>-<j>`` in host i's), with a /32 route to the other's address. No
    # address, route or interface of the root namespace is involved: nothing else on the
    # machine can reach these addresses, and two labs (other subnets) never meet.

    def _migration_veth(self, i: int, j: int) -> str:
        return f"{self.prefix}m{i}-{j}"

    def _in_ns(self, h: LabHost, script: str) -> None:
        run(["nsenter", f"--net=/run/netns/{h.netns}", "--", "sh", "-c", script])

    def _create_migration_links(self, hosts: list[LabHost]) -> None:
        for h in hosts:
            self._in_ns(h, f"ip addr add {h.migration_address}/32 dev lo")
        for a in hosts:
            for b in hosts:
                if a.index < b.index:
                    run(["ip", "link", "add", self._migration_veth(a.index, b.index), "netns", a.netns,
                         "type", "veth", "peer", "name", self._migration_veth(b.index, a.index),
                         "netns", b.netns])
                    self._migration_link_up(a, b)

    def _migration_link_up(self, a: LabHost, b: LabHost) -> None:
        for near, far in ((a, b), (b, a)):
            veth = self._migration_veth(near.index, far.index)
            self._in_ns(near, f"ip link set {veth} up && ip route replace {far.migration_address}/32 "
                              f"dev {veth} src {near.migration_address}")

    def migration_link_down(self, a: LabHost | int | str, b: LabHost | int | str) -> None:
        """Cut the link between two hosts (both ends down): their migration addresses no
        longer reach each other and established connections hang; their links to the
        root namespace (libvirt, VNC) are untouched."""
        a, b = self.host(a), self.host(b)
        self._in_ns(a, f"ip link set {self._migration_veth(a.index, b.index)} down")
        self._in_ns(b, f"ip link set {self._migration_veth(b.index, a.index)} down")

    def migration_link_up(self, a: LabHost | int | str, b: LabHost | int | str) -> None:
        self._migration_link_up(self.host(a), self.host(b))

    def migration_link_rate(self, a: LabHost | int | str, b: LabHost | int | str,
                            mbit: int | None) -> None:
        """Limit what host ``a`` sends to host ``b`` on their link to ``mbit`` Mbit/s
        (a token bucket on a's end), or lift the limit (None): a copy between them
        then lasts long enough to be cut in the middle."""
        a, b = self.host(a), self.host(b)
        veth = self._migration_veth(a.index, b.index)
        self._in_ns(a, f"tc qdisc del dev {veth} root 2>/dev/null; " + (
            f"tc qdisc add dev {veth} root tbf rate {mbit}mbit burst 256kb latency 400ms"
            if mbit else "true"))

    def migration_reachable(self, a: LabHost | int | str, b: LabHost | int | str) -> bool:
        """Whether host ``a`` reaches host ``b``'s migration address: a TCP connect from
        a's namespace is answered (refused counts: nothing need listen there)."""
        import sys

        a, b = self.host(a), self.host(b)
        probe = ("import socket,sys\ns=socket.socket(); s.settimeout(1)\n"
                 f"try: s.connect(('{b.migration_address}', 9))\n"
                 "except ConnectionRefusedError: sys.exit(0)\n"
                 "except OSError: sys.exit(1)\n")
        res = run(["nsenter", f"--net=/run/netns/{a.netns}", "--", sys.executable, "-c", probe],
                  check=False)
        return res.returncode == 0
