"""Tasks: work longer than a page should wait (copying images to hosts, and as they
land migrations and batch creates), run by the worker process (`manage.py worker`).

A task is a row of LouCloud's database (owner, kind, target, state, progress, remaining
time, result or error, attempts); the queue (``taskqueue``: huey) only carries "run task
N". A kind is a function registered with ``@kind``; it reports progress through its
``TaskContext``, which is also where cancel and the time limit reach it. A host briefly
out of reach (``TryAgain``) is retried with a growing back-off. A worker that dies leaves
its tasks "running" with a heartbeat that stops: the next worker (or any worker's
periodic check) queues them again while attempts remain, else marks them failed, so
no task stays "running" for ever."""
from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from flask import current_app
from flask_babel import lazy_gettext as _l

from .. import taskqueue
from ..extensions import db
from ..models import Task, User, utcnow
from ..virt import VirtError
from . import ServiceError, said

log = logging.getLogger(__name__)

STALE_SECONDS = 30        # a running task whose worker has not beaten for this long
BEAT_SECONDS = 5
REPORT_EVERY = 0.5        # progress written at most this often

# What a task says at its steps: kept in English in its row, said in the reader's
# language when shown (said.render finds them in the catalogue, marked here). Anything
# else a task says is stored as its message and values (said.py).
MESSAGE_LIMIT, RESULT_LIMIT, ERROR_LIMIT = 500, 10000, 1000   # its columns' sizes
WAITING = "Waiting for the worker."
CANCELLING = "Cancelling..."
CANCELLED = "Cancelled."
FAILED = "Failed."
DONE = "Done."
REQUEUED = "Its worker stopped; queued again."
_SAID = (_l("Waiting for the worker."), _l("Cancelling..."), _l("Cancelled."), _l("Failed."),
         _l("Done."), _l("Its worker stopped; queued again."))


class Cancelled(Exception):
    """The task stops without failing: cancelled by a user, or (with a text saying why)
    by the task itself when its work went away."""


class TimedOut(Exception):
    pass


class TryAgain(Exception):
    """Something outside LouCloud is briefly unavailable (a host): run the task again
    later, after a back-off, while attempts remain."""


@dataclass(frozen=True)
class Kind:
    name: str
    title: str
    run: Callable[["TaskContext"], str | None]
    attempts: int
    timeout: int
    admin_only: bool
    on_stop: Callable[["TaskContext", str], None] | None


KINDS: dict[str, Kind] = {}


def kind(name: str, title: str, *, attempts: int = 3, timeout: int = 3600,
         admin_only: bool = True, on_stop=None):
    """Register a kind of task: ``run(ctx)`` does the work and returns its result text;
    ``on_stop(ctx, why)`` tidies up after a failure, a cancel or a time-out. ``title``
    (what the task does) is marked for translation (lazy_gettext) where the kind is
    registered; pages say it in the reader's language (tasklist.title)."""
    def register(fn):
        KINDS[name] = Kind(name, title, fn, attempts, timeout, admin_only, on_stop)
        return fn
    return register


def backoff(attempt: int) -> int:
    """Seconds before attempt ``attempt + 1``: 5, 10, 20, ... at most 5 minutes."""
    return min(5 * 2 ** max(attempt - 1, 0), 300)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class TaskContext:
    """What a running task sees: its row, its arguments, and report()."""

    def __init__(self, task: Task, kind_: Kind):
        self.task, self.kind = task, kind_
        self.args = json.loads(task.args or "{}")
        self._began = time.monotonic()
        self._deadline = self._began + task.timeout_seconds
        self._written = 0.0

    def report(self, progress: float | None = None, message=None, *,
               remaining: float | None = None, force: bool = False) -> None:
        """Say how far the task is (0..1) and what it does (a lazy message, _l(...):
        stored with its values, said in each reader's language); commits the session
        (with whatever else the task changed) at most every half second. Raises
        Cancelled or TimedOut when the task must stop."""
        task = self.task
        if progress is not None:
            task.progress = max(0.0, min(1.0, progress))
            elapsed = time.monotonic() - self._began
            if remaining is None and 0.02 <= task.progress < 1 and elapsed > 1:
                remaining = elapsed * (1 - task.progress) / task.progress
        if remaining is not None:
            task.remaining_seconds = int(remaining)
        if message is not None:
            task.message = said.store(message, MESSAGE_LIMIT)
        now = time.monotonic()
        if force or now - self._written >= REPORT_EVERY:
            self._written = now
            task.heartbeat_at = utcnow()
            db.session.commit()
            self.check()

    def check(self) -> None:
        if time.monotonic() > self._deadline:
            raise TimedOut()
        wanted = db.session.execute(db.select(Task.cancel_requested).where(
            Task.id == self.task.id)).scalar()
        if wanted:
            raise Cancelled()


def holding(target_type: str, target_id):
    """SQL: the target (``target_id`` a value or a column, e.g. ``VM.id``) has a task
    that holds it: queued, or running with a live heartbeat. A status such a task set
    is never "stuck": the task ends it, or its on_stop when its worker dies."""
    alive = utcnow() - timedelta(seconds=STALE_SECONDS)
    return db.exists().where(
        Task.target_type == target_type, Task.target_id == target_id,
        db.or_(Task.state == "queued",
               db.and_(Task.state == "running", Task.heartbeat_at >= alive)))


# -- queueing ---------------------------------------------------------------------------
def start(kind_name: str, owner: User | None, *, target_type: str = "",
          target_id: int | None = None, target_name: str = "", args: dict | None = None,
          commit: bool = True) -> Task:
    """Record a task and queue it. The row is committed before it is queued, so the
    worker always finds it; a queue that cannot be reached fails the task at once."""
    k = KINDS[kind_name]
    task = Task(owner_id=owner.id if owner else None, kind=kind_name,
                target_type=target_type, target_id=target_id, target_name=target_name[:255],
                args=json.dumps(args or {}), max_attempts=k.attempts,
                timeout_seconds=k.timeout, message=WAITING)
    db.session.add(task)
    db.session.commit()
    _enqueue(task)
    return task


def _enqueue(task: Task) -> None:
    try:
        taskqueue.enqueue(current_app, task.id)
    except Exception as exc:  # the broker (Redis) is down or its file unwritable
        log.error("task %s not queued: %s", task.id, exc)
        task.state, task.finished_at = "failed", utcnow()
        task.error = said.store(_l("The task queue could not be reached (%(error)s); try "
                                   "again later.", error=str(exc)), ERROR_LIMIT)
        db.session.commit()


# -- running (in the worker) ------------------------------------------------------------
def execute(task_id: int) -> None:
    """Run one task (the worker calls this for each "run task N" it takes)."""
    task = db.session.get(Task, task_id)
    if task is None or task.finished:
        return
    k = KINDS.get(task.kind)
    if task.cancel_requested or k is None:
        finish(task, "cancelled" if k else "failed",
               error="" if k else _l("No worker knows the task kind %(kind)s.", kind=task.kind))
        return
    task.state, task.worker = "running", worker_name()
    task.attempts += 1
    task.started_at = task.started_at or utcnow()
    task.heartbeat_at, task.retry_at, task.error = utcnow(), None, ""
    db.session.commit()
    ctx = TaskContext(task, k)
    log.info("task %s (%s %s) attempt %s", task.id, task.kind, task.target_name,
             task.attempts)
    try:
        result = k.run(ctx)
    except TryAgain as exc:
        db.session.rollback()
        if task.attempts < task.max_attempts:
            delay = backoff(task.attempts)
            task.state, task.retry_at = "queued", utcnow() + timedelta(seconds=delay)
            task.message = said.store(_l(
                "%(reason)s Trying again in %(delay)s s (attempt %(attempt)s of "
                "%(attempts)s).", reason=said.of(exc), delay=delay,
                attempt=task.attempts + 1, attempts=task.max_attempts), MESSAGE_LIMIT)
            db.session.commit()
            raise taskqueue.Retry(delay) from None
        _stopped(ctx, "failed", said.of(exc))
    except Cancelled as exc:
        db.session.rollback()
        _stopped(ctx, "cancelled", said.of(exc))
    except TimedOut:
        db.session.rollback()
        _stopped(ctx, "failed", _l("Stopped after %(seconds)s s, the time limit of this "
                                   "kind of task.", seconds=task.timeout_seconds))
    except (ServiceError, VirtError) as exc:
        db.session.rollback()
        _stopped(ctx, "failed", said.of(exc))
    except Exception as exc:
        log.exception("task %s failed", task.id)
        db.session.rollback()
        error = f"{type(exc).__name__}: {exc}"
        _stopped(ctx, "failed", _l("Internal error (%(error)s); see the worker's log.",
                                   error=error))
    else:
        task.progress, task.remaining_seconds = 1.0, 0
        finish(task, "succeeded", result=result)


def _stopped(ctx: TaskContext, state: str, error) -> None:
    if ctx.kind.on_stop:
        try:
            ctx.kind.on_stop(ctx, state)
        except Exception:
            log.exception("task %s: tidying up after it stopped failed", ctx.task.id)
            db.session.rollback()
    finish(ctx.task, state, error=error)


def finish(task: Task, state: str, *, result=None, error="") -> None:
    """End the task; ``result`` and ``error`` are texts or lazy messages (said.py)."""
    task.state, task.finished_at = state, utcnow()
    if result is None:
        result = ""
    if state == "succeeded" or not (isinstance(result, str) and result == ""):
        task.result = said.store(result, RESULT_LIMIT)  # else what it wrote as it went stays
    task.error = said.store(error, ERROR_LIMIT)
    task.remaining_seconds = 0 if state == "succeeded" else None
    if state == "cancelled":
        task.message = CANCELLED
    elif state == "failed":
        task.message = FAILED
    else:
        task.message = DONE
    db.session.commit()
    log.info("task %s %s%s", task.id, state, f": {error}" if task.error else "")


def beat(name: str) -> None:
    """The worker is alive: every task it runs gets a fresh heartbeat."""
    db.session.execute(db.update(Task).where(Task.worker == name, Task.state == "running")
                       .values(heartbeat_at=utcnow()))
    db.session.commit()


def _dead_here(worker: str) -> bool:
    """A worker of this machine whose process is gone (no need to wait for its
    heartbeat to go stale)."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def recover(except_worker: str | None = None) -> int:
    """Tasks left "running" by a worker that stopped (its process gone from this
    machine, or no heartbeat for STALE_SECONDS):
    queued again while attempts remain, else failed (the page offers "Try again").
    Returns how many were found."""
    limit = utcnow() - timedelta(seconds=STALE_SECONDS)
    running = db.session.execute(db.select(Task).where(Task.state == "running")).scalars()
    stale = [t for t in running if t.heartbeat_at is None or t.heartbeat_at < limit
             or _dead_here(t.worker)]
    for task in stale:
        if except_worker and task.worker == except_worker:
            continue
        k = KINDS.get(task.kind)
        ctx = TaskContext(task, k) if k else None
        if ctx and k.on_stop:
            try:
                k.on_stop(ctx, "interrupted")
            except Exception:
                log.exception("task %s: tidying up after its worker stopped", task.id)
                db.session.rollback()
        if k and task.attempts < task.max_attempts and not task.cancel_requested:
            task.state = "queued"
            task.message = REQUEUED
            db.session.commit()
            _enqueue(task)
        else:
            finish(task, "cancelled" if task.cancel_requested else "failed",
                   error=_l("The worker running it stopped (no sign of life for "
                            "%(seconds)s s).", seconds=STALE_SECONDS))
    return len(stale)
