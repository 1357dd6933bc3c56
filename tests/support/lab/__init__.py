"""A lab of real libvirtd hosts on this one machine, for system tests and benchmarks.

Every lab host ``h<i>`` (1-based) is a real ``libvirtd`` (+ ``virtlogd``) running in
its own network namespace ``<prefix>-h<i>``, its own mount namespace and its own UTS
namespace (hostname ``<prefix>-h<i>``).  The mount namespace bind-mounts the host's
private state from ``<workdir>/h<i>/{etc,lib,run,log,cache}`` over ``/etc/libvirt``,
``/var/lib/libvirt``, ``/run/libvirt``, ``/var/log/libvirt`` and ``/var/cache/libvirt``,
so lab hosts never share sockets, pid files, domains or networks with each other or with
a libvirtd running in the root namespace.

Networking: host i gets a veth pair ``<prefix>h<i>r`` (root side, ``10.231.<i>.1/24``)
and ``<prefix>h<i>n`` (namespace side, ``10.231.<i>.2/24``).  libvirtd listens on TCP
16509 on the namespace address only, without authentication, so the root namespace
reaches it as ``qemu+tcp://10.231.<i>.2/system``.  Nothing else on the machine is
touched, except for one ``unreachable 10.231.<i>.0/24`` fallback route per host (high
metric) that keeps packets for a downed lab link from leaking out via the default route.

Between hosts: host i's *migration address* ``10.231.250.<i>`` is on the loopback of its
namespace, and every pair of hosts has a veth pair of its own straight between their
namespaces (``<prefix>m<i>-<j>`` in host i's) with a /32 route to the other's address;
the root namespace has no interface, address or route of these. QEMU's migration and
NBD streams go there (LouCloud's Host.migration_address); libvirtd itself stays on its
root-namespace link (LouCloud drives migrations with a connection to both hosts).
``lab.migration_link_down(h1, h2)`` cuts that link, ``migration_link_up`` restores it.

A small "holder" process per host (holder.py run as a script) keeps the namespaces
alive, starts libvirtd/virtlogd on request and reaps them and the QEMU processes as a
child subreaper; so libvirtd can be stopped, killed, frozen and started again in the
same namespaces with the same state, and QEMU processes survive libvirtd restarts
exactly as on a real host.

Cleanup finds every process living in the lab's namespaces, kills it, and deletes the
namespaces, veths and routes; ``start()`` does this first for leftovers of a crashed run
with the same prefix.

Labs with different prefixes and subnets (``HostLab(workdir, prefix, subnet)``) can
run side by side; starting a lab kills a running one with the same prefix.  The test
suite takes its prefix, subnet and workdir from a per-run slot (slots.py).  The hosts
reach each other only on their migration addresses (above), within one lab.

Python::

    lab = HostLab(Path("/tmp/mylab"))            # prefix "lc"
    h1, h2 = lab.start(count=2, network_on={1})  # h1 gets an isolated network "default"
    conn = libvirt.open(h1.uri)                  # qemu+tcp://10.231.1.2/system
    path = lab.make_image(h1, "vm1.qcow2", 1 << 30)   # "/var/lib/libvirt/images/vm1.qcow2"
    h1.host_path(path)                           # the same file seen from here
    lab.stop_libvirtd(h1); lab.start_libvirtd(h1)     # also kill_libvirtd, freeze/thaw,
    lab.link_down(h1); lab.link_up(h1)                # libvirtd_pid
    lab.teardown()

Command line (leaves the hosts running, state recorded in ``<workdir>/lab.json``)::

    python -m tests.support.lab up --count 2 [--workdir DIR] [--prefix lc] [--network-on 1,2]
    python -m tests.support.lab status [--workdir DIR]
    python -m tests.support.lab down [--workdir DIR] [--prefix lc] [--keep-files]

Files: ``<workdir>/h<i>/`` per host (logs in ``log/``, QEMU logs in ``log/qemu/``;
holder/daemon start logs and pid files at the top), ``<workdir>/lab.json``, and
``<workdir>/qemu-capabilities/`` (kept by teardown: saves each later start the ~2-10 s
of QEMU probing).

Modules: base.py (constants, HostLabError, LabHost), namespaces.py (netns, veths,
addresses, routes), processes.py (pid files, /proc checks, the holder, killing),
holder.py (the holder itself), libvirtd.py (daemon configuration and control), lab.py
(HostLab), slots.py (per-run slots), __main__.py (the command line).
"""

from .base import (
    DEFAULT_PREFIX,
    DEFAULT_WORKDIR,
    FALLBACK_ROUTE_METRIC,
    IMAGES_DIR_ON_HOST,
    LIBVIRT_TCP_PORT,
    SUBNET,
    HostLabError,
    LabHost,
)
from .lab import HostLab
from .slots import LabSlot, acquire_slot

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_WORKDIR",
    "FALLBACK_ROUTE_METRIC",
    "IMAGES_DIR_ON_HOST",
    "LIBVIRT_TCP_PORT",
    "SUBNET",
    "HostLab",
    "HostLabError",
    "LabHost",
    "LabSlot",
    "acquire_slot",
]
