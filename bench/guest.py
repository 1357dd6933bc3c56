"""6. Usable VMs: what the first-boot seed costs a create, and how long the real guest
(`manage.py images build`'s Debian image) takes from the create to SSH.

Seed: a user's POST /vms/new to "running" for a template on an image that takes
cloud-init (LouCloud builds a NoCloud ISO, uploads it through libvirt's volume upload
and attaches it) against the same image without cloud-init; interleaved, every VM
deleted between runs (outside the time). Boot to SSH: the real guest on a NAT network
LouCloud made on the host, from the POST until an SSH login with the owner's key works
and cloud-init has finished (KVM where the machine can run guests, TCG otherwise)."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tests.support.webclient import CSRF_RE

from .common import Section, add_user, close_app, login, make_app, median, ms, secs
from .lab import boot_image

GIB = 1024 ** 3


class SeedWorld:
    def __init__(self, ctx):
        from loucloud.extensions import db
        from loucloud.models import User
        from loucloud.services import hosts as host_service
        from loucloud.services import images, keys
        from loucloud.services import templates as template_service

        self.ctx = ctx
        self.host = ctx.lab.hosts[2]
        self.app = make_app(ctx.workdir / "guest")
        ctx.cleanup(close_app, self.app)
        path = boot_image(ctx.lab.lab, self.host, "bench-seed.raw", GIB)
        self.templates = {}
        with self.app.app_context():
            alice = add_user("alice")
            from tests.factories import new_public_key
            keys.add_key(db.session.get(User, alice), "bench", new_public_key())
            h = host_service.add_host(self.host.name, self.host.uri)
            for label, cloud in (("plain", False), ("seed", True)):
                image = images.add_image(f"img-{label}", path, guest=images.Guest(
                    "linux", cloud, "debian" if cloud else "", "bios"))
                self.templates[label] = template_service.create_template(
                    f"t-{label}", template_service.Sizes(1, 64, 1), image,
                    network=template_service.Network("none")).id
            self.host_id = h.id
            db.session.remove()
        self.alice = login(self.app, "alice")
        self.n = 0

    def create(self, label: str) -> tuple[float, int]:
        self.n += 1
        form = self.alice.get("/vms/new").get_data(as_text=True)
        token = CSRF_RE.search(form).group(1)
        data = {"name": f"{label}-{self.n}", "template_id": self.templates[label],
                "host_id": 0, "start": "y", "csrf_token": token}
        if label == "seed":
            data["password"] = "bench password 42"
        start = time.perf_counter()
        response = self.alice.post("/vms/new", data)
        seconds = time.perf_counter() - start
        if response.status_code != 302:
            raise RuntimeError(f"create failed: {response.status_code} "
                               f"{response.get_data(as_text=True)[-400:]}")
        return seconds, int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])

    def delete(self, vm_id: int) -> None:
        if self.alice.post(f"/vms/{vm_id}/delete", {}).status_code != 302:
            raise RuntimeError("delete failed")


def _boot_to_ssh(ctx, runs: int) -> tuple[list[float], str]:
    """Seconds from the create POST to SSH and cloud-init done, on host 1's NAT network."""
    from loucloud import imagebuild
    from loucloud.extensions import db
    from loucloud.models import Host, User
    from loucloud.services import hosts as host_service
    from loucloud.services import images, keys, networks
    from loucloud.services import templates as template_service
    from tests.support.guest import Guest, make_ssh_key

    image = imagebuild.build(say=lambda text: ctx.progress(f"guest: {text}"))
    lab_host = ctx.lab.hosts[0]
    app = make_app(ctx.workdir / "boot")
    ctx.cleanup(close_app, app)
    key = make_ssh_key(Path(tempfile.mkdtemp(dir=ctx.workdir)))
    with app.app_context():
        alice = add_user("alice")
        keys.add_key(db.session.get(User, alice), "bench", key.public)
        h = host_service.add_host(lab_host.name, lab_host.uri)
        networks.create_network("benchnet", "10.78.0.0/24", [db.session.get(Host, h.id)])
        img = images.publish_file("debian", str(image), [db.session.get(Host, h.id)],
                                  images.Guest("linux", True, "debian", "bios"))
        template = template_service.create_template(
            "small", template_service.Sizes(1, 512, 3), img,
            network=template_service.Network("network", "benchnet")).id
        db.session.remove()
    client = login(app, "alice")
    times = []
    for r in range(runs):
        form = client.get("/vms/new").get_data(as_text=True)
        token = CSRF_RE.search(form).group(1)
        start = time.monotonic()
        response = client.post("/vms/new", {"name": f"boot-{r}", "template_id": template,
                                            "host_id": 0, "start": "y",
                                            "csrf_token": token})
        if response.status_code != 302:
            raise RuntimeError(f"create failed: {response.status_code}")
        vm_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
        address = client.get(f"/vms/{vm_id}.json").get_json()["addresses"][0]
        Guest(lab_host, address, key).wait_for_ssh(600)
        times.append(time.monotonic() - start)
        ctx.progress(f"guest: boot to SSH {times[-1]:.0f} s")
        client.post(f"/vms/{vm_id}/delete", {})
    from tests.support.lab import HostLab
    return times, HostLab.accel()


def run(ctx) -> list[Section]:
    world = SeedWorld(ctx)
    runs = ctx.runs(11)
    for label in ("plain", "seed"):       # warm-up: the pool, the caches
        world.delete(world.create(label)[1])
    samples = {"plain": [], "seed": []}
    for r in range(runs):
        for label in (("plain", "seed") if r % 2 else ("seed", "plain")):
            seconds, vm_id = world.create(label)
            world.delete(vm_id)
            samples[label].append(seconds)
        ctx.progress(f"guest: seed run {r + 1}/{runs}")
    plain, seeded = median(samples["plain"]), median(samples["seed"])
    table = Section("6. Usable VMs: the first-boot seed and the real guest's boot",
                    ["what", "median", "runs"])
    table.add("create → running, image without cloud-init", ms(plain), runs)
    table.add("create → running, with a seed ISO (built, uploaded, attached)", ms(seeded),
              runs)
    boots, accel = _boot_to_ssh(ctx, ctx.runs(3) if not ctx.quick else 1)
    table.add(f"real guest: create → SSH login and cloud-init done ({accel})",
              secs(median(boots)), len(boots))
    table.target("create with a seed ISO ≤ 1.2 × without", f"{seeded / plain:.2f} ×",
                 seeded / plain <= 1.2)
    table.notes.append(
        "The seed: meta-data and user-data (hostname, the owner's SSH key, the password's "
        "SHA-512 crypt hash) in an ISO 9660 image made with pycdlib, uploaded as a volume "
        "through libvirt's stream, attached as a read-only CD-ROM. Blank 1 GiB raw images "
        "on host 3 (nothing boots: the time is LouCloud's and libvirt's).")
    table.notes.append(
        "Boot to SSH: 512 MiB, 1 vCPU, the Debian image built by `manage.py images build`, "
        "on a NAT network LouCloud made on host 1; until `ssh debian@<its address>` "
        "finds cloud-init's /run/cloud-init/result.json (its first boot done).")
    return [table]
