"""10c. Tasks: what a no-op task costs on the queue (SQLite and Redis), with a real
worker process, for bench/images.py."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .common import SECRET_KEY, Section, make_app, close_app, median, ms

ROOT = Path(__file__).resolve().parents[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ping_latencies(ctx, broker: str, label: str, count: int, gap: float) -> dict:
    """``count`` pings, one at a time, ``gap`` seconds apart (the worker idle between,
    as when an administrator starts a task now and then), each from the call that
    queues it until its row says succeeded; a real worker on the same database."""
    from loucloud.extensions import db
    from loucloud.models import Task
    from loucloud.services.tasklist import ping

    workdir = ctx.workdir / f"tasks-{label}"
    app = make_app(workdir, TASK_BROKER=broker)
    ctx.cleanup(close_app, app)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOUCLOUD_")}
    env.update(DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
               LOUCLOUD_SECRET_KEY=SECRET_KEY, LOUCLOUD_TASK_BROKER=broker,
               LOUCLOUD_INSTANCE=str(app.instance_path), CACHE_DIR=str(workdir / "cache"))
    with open(workdir / "worker.log", "wb") as out:
        worker = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "worker"],
                                  cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    ctx.cleanup(_stop, worker)

    def one() -> tuple[float, float, float]:
        with app.app_context():
            start = time.perf_counter()
            task_id = ping(None).id
            while True:
                row = db.session.execute(db.select(
                    Task.state, Task.created_at, Task.started_at, Task.finished_at)
                    .where(Task.id == task_id)).one()
                db.session.commit()
                if row.state not in ("queued", "running"):
                    break
                if time.perf_counter() - start > 60:
                    raise RuntimeError(f"ping {task_id} not run in 60 s ({label}): "
                                       + (workdir / "worker.log").read_text()[-1500:])
                time.sleep(0.005)
            seen = time.perf_counter() - start
            db.session.remove()
        if row.state != "succeeded":
            raise RuntimeError(f"ping {task_id} {row.state}")
        return (seen, (row.started_at - row.created_at).total_seconds(),
                (row.finished_at - row.started_at).total_seconds())

    one()  # the worker is up and has met the database
    results = []
    for _ in range(count):
        time.sleep(gap)
        results.append(one())
    _stop(worker)
    return {"total": [r[0] for r in results], "wait": [r[1] for r in results],
            "run": [r[2] for r in results]}


def task_overhead(ctx) -> Section:
    count = 5 if ctx.quick else 20
    gap = 2.0
    from tests.support.redis import RedisServer

    redis = RedisServer(ctx.workdir / "redis")
    ctx.cleanup(redis.stop)
    ctx.progress("images: task overhead, SQLite broker")
    sqlite = ping_latencies(ctx, "", "sqlite", count, gap)
    ctx.progress("images: task overhead, Redis broker")
    redis.start()
    on_redis = ping_latencies(ctx, redis.url, "redis", count, gap)
    table = Section("10c. Tasks: a no-op task (ping) from queued to finished, real worker",
                    ["broker", "queued → finished (median)", "max", "of which waiting for "
                     "the worker (median)", "of which running (median)"])
    for name, figures in (("SQLite file (the default)", sqlite),
                          ("Redis, unix socket", on_redis)):
        table.add(name, ms(median(figures["total"])), ms(max(figures["total"])),
                  ms(median(figures["wait"])), ms(median(figures["run"])))
    table.target("ping median with SQLite (no target: reported)",
                 ms(median(sqlite["total"])), None)
    table.target("ping median with Redis (no target: reported)",
                 ms(median(on_redis["total"])), None)
    table.notes.append(
        f"{count} pings each, one at a time, {gap:.0f} s apart (an idle worker, as when "
        "tasks come now and then); measured in the process that queues them (as a web "
        "process does: row committed, then queued) until the row says succeeded, polled "
        "every 5 ms; the split from the row's own times. LouCloud's tables in SQLite "
        "here; the worker is `manage.py worker` (2 at once) in its own process. With "
        "SQLite the worker polls the queue (0.05 s after work, backing off to 0.5 s when "
        "idle); Redis wakes it (a blocking pop).")
    return table


