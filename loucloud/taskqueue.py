"""The queue between the web processes and the worker: huey, a well-kept little task
library. The embedded default keeps the queue in an SQLite file of the instance folder
(no server to run); ``TASK_BROKER=redis://…`` puts it in Redis. Only one kind of huey
task exists: "run LouCloud task N". What a task is, its progress and its outcome live in
LouCloud's own database (``services/tasks.py``); the queue only says which one to run
next and when (a retry after a back-off is a scheduled one)."""
from __future__ import annotations

import logging
import os

from flask import Flask
from huey import MemoryHuey, RedisHuey, SqliteHuey
from huey.exceptions import RetryTask

log = logging.getLogger(__name__)

EXTENSION = "loucloud.huey"


class Retry(Exception):
    """Raised by services.tasks.execute: run the task again after ``delay`` seconds."""

    def __init__(self, delay: float):
        super().__init__(delay)
        self.delay = delay


def make_huey(app: Flask):
    broker = app.config.get("TASK_BROKER", "")
    if broker == "memory":
        return MemoryHuey("loucloud", utc=True)
    if broker.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey("loucloud", url=broker, utc=True)
    if broker:
        raise RuntimeError(f"TASK_BROKER must be empty (SQLite), memory or a redis:// URL, "
                           f"not {broker!r}")
    os.makedirs(app.instance_path, exist_ok=True)
    return SqliteHuey("loucloud", filename=os.path.join(app.instance_path, "tasks.sqlite"),
                      utc=True)


def init_app(app: Flask) -> None:
    huey = make_huey(app)

    @huey.task(name="loucloud.run")
    def run(task_id: int) -> None:
        from .services import copytasks, tasklist, tasks  # noqa: F401 (their kinds)
        from .services import maintenance  # noqa: F401 (migrations, drains: issue 14)
        from .services.vms import clone  # noqa: F401 (clones: issue 14)
        from .services.vms import batch, batch_actions  # noqa: F401 (batches: issue 16)

        with app.app_context():
            try:
                tasks.execute(task_id)
            except Retry as again:
                raise RetryTask(delay=again.delay) from None

    app.extensions[EXTENSION] = (huey, run)


def enqueue(app: Flask, task_id: int) -> None:
    """Put LouCloud task ``task_id`` on the queue (raises when the broker is down)."""
    _huey, run = app.extensions[EXTENSION]
    run(task_id)


def pending(app: Flask) -> int:
    """How many runs wait in the queue (for the worker's health line)."""
    huey, _run = app.extensions[EXTENSION]
    return huey.pending_count()


def run_worker(app: Flask, workers: int) -> None:
    """Consume the queue with ``workers`` threads until SIGINT (finish the tasks under
    way) or SIGTERM (stop now: their tasks are queued again by the next worker)."""
    huey, _run = app.extensions[EXTENSION]
    consumer = huey.create_consumer(workers=workers, worker_type="thread",
                                    periodic=False, initial_delay=0.05, backoff=1.3,
                                    max_delay=0.5, check_worker_health=True)
    consumer.run()
