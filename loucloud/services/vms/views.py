"""What pages show of VMs: a VM with its state and addresses (VMView), a page of them
(VMPage), one VM's page (VMDetail); the same whether states come from the store (the
watcher) or straight from the hosts."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flask_babel import lazy_gettext as _l

from ...models import VM
from ...virt.driver import ACTIONS_BY_STATE, DomainStatus
from .. import said

TRANSITIONAL = {"creating", "starting", "stopping", "rebooting", "pausing", "resuming",
                "deleting",
                # issue 14: snapshots, suspend to disk, rebuild, clone
                "snapshotting", "reverting", "saving", "discarding", "rebuilding", "cloning",
                # issue 14: migration
                "migrating"}
TRANSITIONAL |= {"resizing", "attaching", "detaching"}  # issue 14: resize and disks
# The states the list can be filtered by.
FILTER_STATES = ["running", "paused", "shut off", "crashed", "missing", "host offline"]
# A state (libvirt's, LouCloud's, a VM's status) as a person reads it: the data stays as
# it is (data-state, JSON, filters); pages say it with state_label, and their scripts
# (static/follow.js) with this table as base.html hands it to them.
STATE_LABELS = {
    "running": _l("running"), "paused": _l("paused"), "shut off": _l("shut off"),
    "crashed": _l("crashed"), "missing": _l("missing"), "host offline": _l("host offline"),
    "unknown": _l("unknown"), "shutting down": _l("shutting down"),
    "suspended": _l("suspended"), "no state": _l("no state"), "lost": _l("lost"),
    "expired": _l("expired"), "ready": _l("ready"), "error": _l("error"),
    "creating": _l("creating"), "starting": _l("starting"), "stopping": _l("stopping"),
    "rebooting": _l("rebooting"), "pausing": _l("pausing"), "resuming": _l("resuming"),
    "deleting": _l("deleting"), "snapshotting": _l("snapshotting"),
    "reverting": _l("reverting"), "saving": _l("saving"), "discarding": _l("discarding"),
    "rebuilding": _l("rebuilding"), "cloning": _l("cloning"), "migrating": _l("migrating"),
    "resizing": _l("resizing"), "attaching": _l("attaching"), "detaching": _l("detaching"),
}


def state_said(state: str | None):
    """``state``'s label said later (lazy: what the worker stores is said in each
    reader's language, said.py); an unknown one as it is."""
    return STATE_LABELS.get(state, state or "")


def state_label(state: str | None) -> str:
    """``state`` in the reader's language ("starting…" too); an unknown one as it is."""
    if not state:
        return state or ""
    if state.endswith("…"):
        return state_label(state[:-1]) + "…"
    label = STATE_LABELS.get(state)
    return str(label) if label is not None else state


@dataclass
class VMView:
    vm: VM
    state: str               # libvirt's state, or missing / host offline / a transition
    host_online: bool
    addresses: list[str] = field(default_factory=list)
    state_at: datetime | None = None    # when the state was last confirmed (store)

    @property
    def busy(self) -> bool:
        return self.vm.status in TRANSITIONAL

    @property
    def actions(self) -> list[str]:
        """The actions that fit the state (the page shows only these)."""
        if self.busy or not self.host_online or self.state in ("missing", "unknown"):
            return []
        actions = [a for a, states in ACTIONS_BY_STATE.items() if self.state in states]
        if self.state in ("running", "paused") and not self.vm.host.is_demo:
            actions += ["console", "serial"]
        return actions

    def as_dict(self) -> dict:
        vm = self.vm
        return {"id": vm.id, "name": vm.name, "owner": vm.owner.username,
                "host": vm.host.name, "state": self.state, "status": vm.status,
                "vcpus": vm.vcpus, "memory_mib": vm.memory_mib, "disk_gib": vm.disk_gib,
                "template": vm.template.name, "actions": self.actions,
                "error": said.render(vm.last_error), "addresses": self.addresses,
                "network": vm.network if vm.nic_kind else None, "mac": vm.mac,
                "state_at": self.state_at.isoformat() + "Z" if self.state_at else None}


@dataclass
class VMPage:
    items: list[VMView]
    total: int
    page: int
    pages: int

    def window(self, around: int = 2) -> list[int | None]:
        """The page numbers a pager shows: the first, the last and those around this
        one, None for each gap (not one entry per page: thousands of VMs, 200 pages)."""
        wanted = sorted({1, self.pages, *range(max(1, self.page - around),
                                               min(self.pages, self.page + around) + 1)})
        out: list[int | None] = []
        for p in wanted:
            if out and p - out[-1] > 1:
                out.append(None)
            out.append(p)
        return out


@dataclass
class VMDetail:
    view: VMView
    status: DomainStatus | None
    error: str | None
