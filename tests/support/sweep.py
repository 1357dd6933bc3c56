"""Leave lab hosts as a test found them: remove LouCloud's domains and volumes directly
through libvirt (the safety net after a test that cut, froze or killed a host)."""
from __future__ import annotations

import subprocess

import libvirt

PREFIX = "lc-"


def sweep_host(uri: str, pool_name: str = "loucloud", *, unstick=None) -> list[str]:
    """Destroy and undefine every ``lc-*`` domain and delete every ``lc-*`` volume of the
    pool on one host. Returns what was removed. A domain libvirt cannot destroy (a
    libvirtd killed in the middle of its start can leave it holding its job lock: "cannot
    acquire state change lock", for minutes) is handed to ``unstick(name)`` when given,
    which clears it the hard way (lab_unsticker), and the sweep runs again once."""
    try:
        return _sweep(uri, pool_name)
    except Stuck as exc:
        if unstick is None:
            raise
        unstick(exc.name)
        return _sweep(uri, pool_name)


class Stuck(Exception):
    """libvirt cannot destroy the domain ``name``: it timed out on its job lock."""

    def __init__(self, name: str):
        super().__init__(f"{name}: cannot acquire its state change lock")
        self.name = name


def _sweep(uri: str, pool_name: str) -> list[str]:
    removed = []
    conn = libvirt.open(uri)
    try:
        for dom in conn.listAllDomains(0):
            if not dom.name().startswith(PREFIX):
                continue
            try:
                if dom.isActive():
                    dom.destroy()
                dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_OPERATION_TIMEOUT:
                    raise
                raise Stuck(dom.name()) from exc
            removed.append(f"domain {dom.name()}")
        try:
            pool = conn.storagePoolLookupByName(pool_name)
        except libvirt.libvirtError:
            return removed
        if pool.isActive():
            pool.refresh(0)
            for name in pool.listVolumes():
                if name.startswith(PREFIX):
                    pool.storageVolLookupByName(name).delete(0)
                    removed.append(f"volume {name}")
    finally:
        conn.close()
    return removed


def lab_unsticker(lab, host):
    """``unstick(name)`` for a lab host: SIGKILL the domain's QEMU (its names are
    LouCloud's UUID-based ones, unique on this machine) and restart the host's
    libvirtd, which then finds the domain shut off and its job gone."""
    def unstick(name: str) -> None:
        subprocess.run(["pkill", "-KILL", "-f", f"guest={name},"], check=False)
        lab.kill_libvirtd(host)
        lab.start_libvirtd(host)
    return unstick
