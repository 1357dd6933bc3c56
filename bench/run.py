"""Run LouCloud's benchmarks: ``python -m bench.run [--only list,create,...] [--quick]``.

Starts what it needs (real libvirtd hosts in namespaces, MariaDB, Apache + mod_wsgi),
runs each benchmark, prints one table and writes it to bench/results/<date>.md with a
description of the machine. Everything it started is stopped again, also on failure or
Ctrl-C. It prints figures; it never fails on a time (exit status 1 only when a benchmark
could not run at all)."""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
# In this order: creates on hosts still empty, the thousands of domains of the list
# benchmark last, the dead host on them.
BENCHMARKS = ("create", "console", "concurrency", "guest", "images", "list", "api", "deadhost",
              "batches", "watch", "snapshots", "disks", "migration")


class Context:
    """What the benchmarks share: the lab, the call counter, a work directory, run
    counts and the clean-ups of whatever they start."""

    def __init__(self, workdir: Path, quick: bool):
        self.workdir = workdir
        self.quick = quick
        self.started = time.monotonic()
        self._stacks = [contextlib.ExitStack()]
        self.lab = None
        self.counter = None
        self.domain_type = "kvm"
        self.list_world = None
        self.mariadb = None

    def runs(self, n: int) -> int:
        """Runs per median: ``n``, or 3 in a quick run."""
        return min(n, 3) if self.quick else n

    def cleanup(self, fn, *args) -> None:
        """Undo at the end of the current benchmark (or of the run, outside one)."""
        self._stacks[-1].callback(fn, *args)

    def keep(self, fn, *args) -> None:
        """Undo at the end of the run (what a later benchmark goes on using)."""
        self._stacks[0].callback(fn, *args)

    @contextlib.contextmanager
    def stage(self):
        with contextlib.ExitStack() as stack:
            self._stacks.append(stack)
            try:
                yield
            finally:
                self._stacks.pop()

    def close(self) -> None:
        while len(self._stacks) > 1:
            self._stacks.pop().close()
        self._stacks[0].close()

    def progress(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f} s] {message}", file=sys.stderr,
              flush=True)


def _sigterm(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _results_path(now: datetime) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{now:%Y-%m-%d}.md"
    n = 2
    while path.exists():
        path = RESULTS / f"{now:%Y-%m-%d}-{n}.md"
        n += 1
    return path


def render(machine, sections, failures, elapsed: float, args) -> str:
    out = [f"# LouCloud benchmarks, {datetime.now():%Y-%m-%d %H:%M}", ""]
    out += ["| machine | |", "| --- | --- |"]
    out += [f"| {k} | {v} |" for k, v in machine]
    out += ["", f"Whole run: {elapsed / 60:.1f} min"
            + (" (quick: 3 runs per median)" if args.quick else "")
            + (f"; only {args.only}" if args.only else "") + ".", ""]
    for section in sorted(sections, key=lambda sec: sec.title):
        out.append(section.markdown())
    for name, text in failures:
        out += [f"### {name}: could not run", "", "```", text.rstrip(), "```", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--only", default="",
                        help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="3 runs per median")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (logs, databases) afterwards")
    parser.add_argument("--no-write", action="store_true",
                        help="print the table only, write nothing to bench/results")
    args = parser.parse_args(argv)
    chosen = [b for b in BENCHMARKS if not args.only or b in args.only.split(",")]
    unknown = set(filter(None, args.only.split(","))) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    if os.geteuid() != 0:
        print("bench: needs root (libvirtd hosts in network namespaces, Apache, MariaDB)",
              file=sys.stderr)
        return 1

    workdir = Path(tempfile.mkdtemp(prefix="loucloud-bench-"))
    workdir.chmod(0o755)
    # Before anything of LouCloud is imported: its own instance folder, not the checkout's.
    os.environ["LOUCLOUD_INSTANCE"] = str(workdir / "instance")
    import config  # noqa: F401 - binds INSTANCE_DIR now; then the variable goes, so that
    # the processes started later (Apache, the proxy) find their own instance folders.
    del os.environ["LOUCLOUD_INSTANCE"]
    for key in ("DATABASE_URL", "LOUCLOUD_CONFIG", "CACHE_TYPE", "CACHE_DIR"):
        os.environ.pop(key, None)
    logging.basicConfig(filename=workdir / "bench.log", level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s")
    old_term = signal.signal(signal.SIGTERM, _sigterm)

    from tests.support.lab import HostLab

    from . import machine as machine_mod
    from .counting import CallCounter
    from .lab import BenchLab

    reason = HostLab.unavailable_reason()
    if reason:
        print(f"bench: the host lab cannot run here: {reason}", file=sys.stderr)
        return 1
    kvm = HostLab.kvm_usable()
    ctx = Context(workdir, args.quick)
    ctx.domain_type = "kvm" if kvm else "qemu"
    sections, failures = [], []
    machine = machine_mod.describe(kvm)
    status = 0
    try:
        ctx.lab = BenchLab(workdir / "lab", count=4)
        ctx.cleanup(ctx.lab.teardown)
        ctx.progress("starting 4 libvirtd hosts")
        ctx.lab.start()
        ctx.counter = CallCounter().install()
        ctx.cleanup(ctx.counter.uninstall)
        modules = _modules()
        missing = [n for n in chosen if n not in modules]
        if missing:
            raise RuntimeError(f"no module for {missing}")
        for name in chosen:
            if name == "deadhost" and "list" not in chosen:
                from .vmlist import ListWorld
                ctx.list_world = ListWorld(ctx)
                ctx.list_world.load(4, 1000)
            ctx.progress(f"--- {name}")
            try:
                with ctx.stage():
                    sections += modules[name].run(ctx)
            except KeyboardInterrupt:
                raise
            except Exception:  # noqa: BLE001 - reported, the other benchmarks go on
                failures.append((name, traceback.format_exc()))
                ctx.progress(f"{name} failed:\n{traceback.format_exc()}")
                status = 1
    except KeyboardInterrupt:
        ctx.progress("interrupted: cleaning up")
        status = 130
    finally:
        try:
            ctx.close()
        finally:
            signal.signal(signal.SIGTERM, old_term)
            elapsed = time.monotonic() - ctx.started
            report = render(machine, sections, failures, elapsed, args)
            print(report)
            if not args.no_write and (sections or failures):
                path = _results_path(datetime.now())
                path.write_text(report + "\n")
                print(f"written to {path.relative_to(ROOT)}", file=sys.stderr)
            if args.keep:
                print(f"work directory kept: {workdir}", file=sys.stderr)
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    return status


def _modules():
    import importlib

    names = {"list": "vmlist", "create": "create", "console": "console",
             "concurrency": "concurrency", "guest": "guest", "deadhost": "deadhost",
             "watch": "watch", "images": "images", "snapshots": "snapshots", "disks": "disks",
             "migration": "migration", "api": "api", "batches": "batches"}
    return {k: importlib.import_module(f"bench.{v}") for k, v in names.items()
            if importlib.util.find_spec(f"bench.{v}")}


if __name__ == "__main__":
    sys.exit(main())
