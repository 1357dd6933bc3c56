"""Leave lab hosts as a test found them: remove LouCloud's domains and volumes directly
through libvirt (the safety net after a test that cut, froze or killed a host)."""
from __future__ import annotations

import libvirt

PREFIX = "lc-"


def sweep_host(uri: str, pool_name: str = "loucloud") -> list[str]:
    """Destroy and undefine every ``lc-*`` domain and delete every ``lc-*`` volume of the
    pool on one host. Returns what was removed."""
    removed = []
    conn = libvirt.open(uri)
    try:
        for dom in conn.listAllDomains(0):
            if not dom.name().startswith(PREFIX):
                continue
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
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
