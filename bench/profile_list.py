"""Profile the VM list page with pyinstrument (not a requirement: ``pip install
pyinstrument`` into the venv first):

    python -m bench.profile_list [--hosts 4] [--vms 4000] [--path /] [--pages 20]

Starts the host lab, loads the VMs as benchmark 1 does, and prints where the time of
``--pages`` page requests goes (wall clock of the request's thread; the libvirt calls
run in the HostPool's threads and show as the wait for them)."""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_list")
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--vms", type=int, default=4000)
    parser.add_argument("--path", default="/")
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--html", help="also write pyinstrument's HTML report here")
    parser.add_argument("--cached", action="store_true",
                        help="let pages share the app's cache of host states (by default "
                             "each page asks libvirt, the cache expired before it)")
    args = parser.parse_args(argv)
    from pyinstrument import Profiler

    workdir = Path(tempfile.mkdtemp(prefix="loucloud-profile-"))
    os.environ["LOUCLOUD_INSTANCE"] = str(workdir / "instance")
    logging.basicConfig(filename=workdir / "profile.log", level=logging.INFO)
    from tests.support.lab import HostLab

    from .counting import CallCounter
    from .lab import BenchLab
    from .run import Context
    from .vmlist import ListWorld

    ctx = Context(workdir, quick=False)
    ctx.domain_type = "kvm" if HostLab.kvm_usable() else "qemu"
    try:
        ctx.lab = BenchLab(workdir / "lab", count=max(args.hosts, 1))
        ctx.cleanup(ctx.lab.teardown)
        ctx.lab.start()
        ctx.counter = CallCounter().install()
        ctx.cleanup(ctx.counter.uninstall)
        world = ListWorld(ctx)
        world.load(args.hosts, args.vms)
        for _ in range(3):
            world.page(args.path)
        profiler = Profiler(interval=0.0005, async_mode="disabled")
        for _ in range(args.pages):
            if not args.cached:
                world.forget()
            profiler.start()
            world.page(args.path)
            profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=os.environ.get("PROFILE_ALL") == "1"))
        if args.html:
            Path(args.html).write_text(profiler.output_html())
    finally:
        ctx.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
