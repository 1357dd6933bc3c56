"""Batch create (JimV's): one VM (or N) for each user of a group or a list, from one
template, named by a pattern (``lab1-{username}``), as one task with progress.

Each VM goes to the host with the most free memory at that moment, in JimV's
reverse-load order: the hosts are asked once when the task begins (placement's
ranking) and each VM placed takes its memory off its host's figure, because a new
VM's memory is not used at once under QEMU, so the hosts' own figures would not show
the batch's earlier VMs for a while. Each owner's quota is checked and reserved
atomically by the create itself; a VM that cannot be made (quota, a name taken, a host
that fails) is listed with its reason and the others go on: the successes are kept.

A task run again (a worker that died) skips the VMs its batch already has."""
from __future__ import annotations

import json
import logging
import string
from datetime import datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ...extensions import db
from ...models import INT64_MAX, VM, Batch, Template, User, utcnow
from .. import FieldError, NotFound, ServiceError, Unavailable, said, tasks, transaction
from ..templates import may_use_template
from . import placement
from .create import check_name, create_vm

log = logging.getLogger(__name__)

MAX_VMS = 500             # one batch at most
MAX_PER_USER = 20
FIELDS = {"username", "n"}
DEFAULT_PATTERN = "{username}"


def plan(pattern: str, users: list[User], per_user: int = 1) -> list[tuple[User, str]]:
    """Each VM of the batch: (owner, name); VM names are unique per owner, so a pattern
    without {username} ("lab1") gives every user a VM of that name. Raises FieldError
    naming the field at fault:
    ``pattern`` (unknown fields, names that are not valid or not distinct), ``per_user``,
    ``users``."""
    pattern = (pattern or "").strip()
    if not users:
        raise FieldError(_("Choose at least one user (a group with members, or users)."),
                         "users")
    if not 1 <= per_user <= MAX_PER_USER:
        raise FieldError(_("Make 1 to %(max)s VMs per user.", max=MAX_PER_USER), "per_user")
    if len(users) * per_user > MAX_VMS:
        raise FieldError(_("A batch makes at most %(max)s VMs; this one would make "
                           "%(count)s.", max=MAX_VMS, count=len(users) * per_user),
                         "per_user")
    try:
        used = {field for _text, field, _spec, _conv in string.Formatter().parse(pattern)
                if field}
    except ValueError:
        raise FieldError(_("The pattern has an unmatched brace: write {username} and {n} "
                           "with both braces."), "pattern") from None
    if not pattern or used - FIELDS:
        raise FieldError(_("Use {username} and {n} (the VM's number for its user) in the "
                           "pattern, e.g. lab1-{username}, and nothing else in braces."),
                         "pattern")
    if per_user > 1 and "n" not in used:
        raise FieldError(_("Put {n} in the pattern to tell a user's VMs apart."), "pattern")
    items = []
    for user in users:
        for n in range(1, per_user + 1):
            name = pattern.format(username=user.username, n=n)
            try:
                items.append((user, check_name(name)))
            except FieldError as exc:
                raise FieldError(_("The pattern gives %(name)s for %(user)s, which is not a "
                                   "valid VM name: %(error)s", name=repr(name),
                                   user=user.username, error=exc), "pattern") from None
    return items


@transaction
def start_batch_create(actor: User, template: Template, users: list[User], *,
                       pattern: str = DEFAULT_PATTERN, per_user: int = 1,
                       expires_at: datetime | None = None) -> Batch:
    """Check what can be checked at once (the pattern, the sizes, the expiry, that every
    user may use the template) and queue the batch's task. Returns the batch."""
    items = plan(pattern, users, per_user)
    if expires_at is not None and expires_at <= utcnow():
        raise FieldError(_("Choose an expiry in the future (or none)."), "expires_at")
    refused = [u.username for u in dict.fromkeys(users) if not may_use_template(u, template)]
    if refused:
        raise FieldError(_("%(users)s may not use the template %(template)s.",
                           users=", ".join(refused), template=template.name), "template_id")
    batch = Batch(pattern=pattern.strip(), template_id=template.id,
                  template_name=template.name, created_by_id=actor.id, per_user=per_user,
                  expires_at=expires_at,
                  planned=json.dumps([[u.id, u.username, name] for u, name in items]))
    db.session.add(batch)
    db.session.commit()
    task = tasks.start("vm.batch-create", actor, target_type="batch", target_id=batch.id,
                       target_name=_("%(pattern)s (%(count)s VMs)", pattern=batch.pattern,
                                     count=len(items)),
                       args={"batch_id": batch.id})
    batch.task_id = task.id
    db.session.commit()
    return batch


def _pick(room: dict[int, int], order: list[int]) -> int | None:
    """The host with the most free memory left (a tie: the earlier in the ranking)."""
    return max(order, key=lambda h: (room[h], -order.index(h))) if order else None


@tasks.kind("vm.batch-create", _l("Create VMs in a batch"), attempts=2, timeout=6 * 3600,
            admin_only=False)
def _batch_create(ctx: tasks.TaskContext):
    batch = db.session.get(Batch, ctx.args["batch_id"])
    if batch is None or batch.template is None:
        raise ServiceError(_("The batch or its template was deleted."))
    template, items = batch.template, batch.planned_items
    made = {(vm.owner_id, vm.name) for vm in batch.vms}   # an earlier attempt's
    failures = [[user, name, said.Stored(reason)] for user, name, reason
                in batch.failure_items if (user, name) not in made]
    # What the worker says is stored as messages (said.py): each reader reads it in
    # his language (the progress, the result, each failure's reason).
    failed = {(f[0], f[1]) for f in failures}
    ranked = placement.ranked_hosts(template)
    room = {host.id: free for host, free in ranked}
    order = [host.id for host, _ in ranked]
    hosts = {host.id: host for host, _ in ranked}
    total, done = len(items), 0
    for user_id, username, name in items:
        done += 1
        if (user_id, name) in made or (username, name) in failed:
            continue
        ctx.report(done / total, _l("Making %(name)s for %(user)s (%(done)s of "
                                    "%(total)s).", name=name, user=username, done=done,
                                    total=total))
        reason = _make_one(batch, template, user_id, name, room, order, hosts)
        if reason is None:
            made.add((user_id, name))
        else:
            failures.append([username, name, reason])
            failed.add((username, name))
        batch = db.session.get(Batch, batch.id)
        batch.failures = _stored_failures(failures)
        db.session.commit()
    ok = sum(1 for user_id, _username, name in items if (user_id, name) in made)
    result = _l("%(made)s of %(total)s VMs made.", made=ok, total=total)
    if not failures:
        return result
    each = [_l("%(name)s (%(user)s): %(reason)s", name=name, user=username, reason=reason)
            for username, name, reason in failures]
    return said.Joined([result, _l("%(count)s could not be made: %(failures)s",
                                   count=len(failures), failures=said.Joined(each, "; "))],
                       " ")


# MariaDB's TEXT holds 64 KiB: the failures' reasons as messages while they fit, else
# as their text in the worker's language.
FAILURES_BYTES = 60000


def _stored_failures(failures: list[list]) -> str:
    stored = json.dumps([[user, name, said.node(reason)] for user, name, reason in failures],
                        ensure_ascii=False)
    if len(stored.encode()) <= FAILURES_BYTES:
        return stored
    return json.dumps([[user, name, said.render(reason)] for user, name, reason in failures],
                      ensure_ascii=False)


def failures(batch: Batch) -> list[tuple[str, str, str]]:
    """What could not be made, (owner, VM name, why), the reasons in the reader's
    language."""
    return [(user, name, said.render(reason) or "") for user, name, reason
            in batch.failure_items]


def _make_one(batch: Batch, template: Template, user_id: int, name: str,
              room: dict[int, int], order: list[int], hosts: dict):
    """Make one VM; None when made, else why not (a message, said.py). A host that
    fails is left out of the rest of the batch, and the VM tried on the next one."""
    owner = db.session.get(User, user_id)
    if owner is None or not owner.active:
        return _l("the user no longer exists or is disabled")
    reason = _l("no host can take it")
    while order:
        host_id = _pick(room, order)
        try:
            create_vm(owner, name, template, host=hosts[host_id], batch=batch)
        except Unavailable as exc:    # this host is out for the rest of the batch
            reason = said.of(exc)
            order.remove(host_id)
            log.warning("batch %s: %s left out: %s", batch.id, hosts[host_id].name, exc)
            continue
        except ServiceError as exc:   # quota, a name taken, libvirt's reason
            db.session.rollback()
            return said.of(exc)
        room[host_id] -= template.memory_mib
        return None
    return reason


def batch_vms(batch: Batch) -> list[VM]:
    return db.session.execute(db.select(VM).where(VM.batch_id == batch.id)
                              .order_by(VM.name, VM.id)).scalars().all()


def get_batch(batch_id: int) -> Batch:
    batch = db.session.get(Batch, batch_id) if 0 < batch_id <= INT64_MAX else None
    if batch is None:
        raise NotFound(_("There is no batch %(id)s.", id=batch_id))
    return batch


def latest_batches(limit: int = 200) -> list[Batch]:
    return db.session.execute(db.select(Batch).order_by(Batch.id.desc()).limit(limit)
                              ).scalars().all()


def summary(batch: Batch) -> dict:
    """What a batch's list shows: how many VMs it asked and has, in which states, how
    many could not be made, its task's state."""
    states: dict[str, int] = {}
    for vm in batch.vms:
        label = "expired" if vm.expired_at else (vm.live_state or vm.status)
        states[label] = states.get(label, 0) + 1
    return {"id": batch.id, "pattern": batch.pattern, "template": batch.template_name,
            "asked": len(batch.planned_items), "vms": sum(states.values()),
            "failed": len(batch.failure_items), "states": states,
            "expires_at": batch.expires_at, "created_at": batch.created_at,
            "created_by": batch.created_by.username if batch.created_by else "",
            "task_state": batch.task.state if batch.task else ""}
