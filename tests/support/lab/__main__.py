"""A lab of real libvirtd hosts on this one machine, for system tests and benchmarks.

    python -m tests.support.lab up --count 2 [--workdir DIR] [--prefix lc] [--network-on 1,2]
    python -m tests.support.lab status [--workdir DIR]
    python -m tests.support.lab down [--workdir DIR] [--prefix lc] [--keep-files]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .base import DEFAULT_PREFIX, DEFAULT_WORKDIR, STATE_FILE
from .lab import HostLab


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.support.lab", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start a lab and leave it running; prints its URIs as JSON")
    up.add_argument("--count", type=int, default=2)
    up.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    up.add_argument("--prefix", default=DEFAULT_PREFIX)
    up.add_argument("--network-on", default="", help="comma separated host indexes that get the 'default' network")
    down = sub.add_parser("down", help="tear a lab down (also a crashed one)")
    down.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    down.add_argument("--prefix", default=None, help="default: from the workdir's state, else 'lc'")
    down.add_argument("--keep-files", action="store_true")
    st = sub.add_parser("status", help="print the lab's hosts and whether libvirtd runs")
    st.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    args = ap.parse_args(argv)

    if args.cmd == "up":
        network_on = {int(x) for x in args.network_on.split(",") if x.strip()}
        lab = HostLab(args.workdir, args.prefix)
        t0 = time.monotonic()
        lab.start(args.count, network_on)
        out = lab.summary()
        out["start_seconds"] = round(time.monotonic() - t0, 2)
        print(json.dumps(out, indent=2))
        return 0
    if args.cmd == "down":
        prefix = args.prefix
        if prefix is None:
            try:
                prefix = json.loads((args.workdir.absolute() / STATE_FILE).read_text())["prefix"]
            except (OSError, ValueError, KeyError):
                prefix = DEFAULT_PREFIX
        HostLab(args.workdir, prefix).teardown(remove_files=not args.keep_files)
        return 0
    if args.cmd == "status":
        try:
            lab = HostLab.attach(args.workdir)
        except FileNotFoundError:
            print(json.dumps({"running": False}))
            return 1
        out = lab.summary()
        for hj, h in zip(out["hosts"], lab.hosts, strict=True):
            hj["libvirtd_pid"] = lab._libvirtd_pid_or_none(h)
        print(json.dumps(out, indent=2))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
