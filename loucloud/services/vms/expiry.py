"""Expiry of a batch's VMs (vms/batch.py): at its time a VM is shut down (the guest's
own shutdown; forced off when it still runs GRACE later), marked expired and kept. An
expired VM does not start (lifecycle.act_on_vm refuses) until its expiry is moved on
or removed (the batch's page, by the administrator or the group's manager); its disk
and everything in it stay."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask_babel import gettext as _

from ...extensions import db
from ...i18n import when
from ...models import VM, Batch, utcnow
from .. import FieldError, ServiceError, transaction
from .lifecycle import act_on_vm

log = logging.getLogger(__name__)

GRACE = timedelta(minutes=2)
RUNNING = ("running", "paused", "blocked", "pmsuspended")


def expire_due(now: datetime | None = None) -> dict[str, int]:
    """The sweep (the sampler's loop calls it every minute): VMs whose time has come are
    marked expired and shut down; expired VMs still running GRACE after are forced off.
    Returns how many of each."""
    now = now or utcnow()
    due = db.session.execute(db.select(VM).where(
        VM.expires_at.is_not(None), VM.expires_at <= now, VM.expired_at.is_(None),
        VM.status == VM.READY)).scalars().all()
    counts = {"expired": 0, "forced off": 0}
    for vm in due:
        vm.expired_at = now
        db.session.commit()
        counts["expired"] += 1
        log.info("VM %s expired", vm.name)
        if vm.live_state in RUNNING:
            _stop(vm, "shutdown")
    late = db.session.execute(db.select(VM).where(
        VM.expired_at.is_not(None), VM.expired_at <= now - GRACE, VM.status == VM.READY,
        VM.live_state.in_(RUNNING))).scalars().all()
    for vm in late:
        if _stop(vm, "poweroff"):
            counts["forced off"] += 1
    return counts


def _stop(vm: VM, action: str) -> bool:
    try:
        act_on_vm(vm, action)
        return True
    except ServiceError as exc:   # the host is offline, the VM busy: the next sweep
        log.warning("expired VM %s: %s failed: %s", vm.name, action, exc)
        return False


@transaction
def set_expiry(batch: Batch, expires_at: datetime | None) -> str:
    """Move a batch's expiry (or remove it with None): its VMs get it, and those expired
    may start again."""
    if expires_at is not None and expires_at <= utcnow():
        raise FieldError(_("Choose an expiry in the future, or none."), "expires_at")
    batch.expires_at = expires_at
    for vm in batch.vms:
        vm.expires_at, vm.expired_at = expires_at, None
    db.session.commit()
    if expires_at is None:
        return _("The batch's VMs no longer expire.")
    return _("The batch's VMs now expire on %(when)s.", when=when(expires_at))
