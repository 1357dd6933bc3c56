"""What every benchmark uses: figures (medians, ratios), the application on its own
database in the run's work directory, a logged-in browser-like client, the catalog."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

PASSWORD = "bench password 1"
SECRET_KEY = "bench-secret-key-" + "0123456789abcdef" * 2
SITE = "http://127.0.0.1:5000"


# -- figures ---------------------------------------------------------------------------
def median(values) -> float:
    return statistics.median(values)


def timed(fn: Callable, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def ms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def secs(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.2f} s"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or not b:
        return "—"
    return f"{a / b:.2f}"


def spread(values) -> str:
    """min–max, to show how noisy a median is."""
    values = list(values)
    if not values:
        return ""
    return f"{ms(min(values))}–{ms(max(values))}"


@dataclass
class Section:
    """One table of the report: a title, column names, rows, and notes under it."""
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: list[tuple[str, str, bool | None]] = field(default_factory=list)

    def add(self, *cells) -> None:
        self.rows.append([str(c) for c in cells])

    def target(self, what: str, measured: str, met: bool | None) -> None:
        self.targets.append((what, measured, met))

    def markdown(self) -> str:
        out = [f"### {self.title}", ""]
        if self.rows:
            out.append("| " + " | ".join(self.columns) + " |")
            out.append("|" + "|".join(" --- " for _ in self.columns) + "|")
            out += ["| " + " | ".join(r) + " |" for r in self.rows]
            out.append("")
        if self.targets:
            out.append("| target | measured | met |")
            out.append("| --- | --- | --- |")
            for what, measured, met in self.targets:
                out.append(f"| {what} | {measured} | "
                           f"{'yes' if met else 'n/a' if met is None else '**no**'} |")
            out.append("")
        out += [f"- {n}" for n in self.notes]
        if self.notes:
            out.append("")
        return "\n".join(out)


# -- the application -------------------------------------------------------------------
def make_app(workdir: Path, database_url: str | None = None, **overrides):
    """LouCloud as configured by default (file cache, real password hashing), on its own
    SQLite file in ``workdir`` unless ``database_url`` is given; schema from the models."""
    from loucloud import create_app
    from loucloud.extensions import db

    workdir.mkdir(parents=True, exist_ok=True)
    url = database_url or f"sqlite:///{workdir / 'loucloud.sqlite'}"
    config = {"SECRET_KEY": SECRET_KEY, "SQLALCHEMY_DATABASE_URI": url,
              "CACHE_DIR": str(workdir / "cache"), "SITE_URL": SITE, **overrides}
    app = create_app("default", **config)
    with app.app_context():
        db.create_all()
    return app


def close_app(app) -> None:
    from loucloud.extensions import db
    from loucloud.services.hypervisors import close_pool

    close_pool(app)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def login(app, username: str, password: str = PASSWORD):
    """A logged-in client of the app (tests.support.webclient.Client)."""
    from tests.support.webclient import Client

    client = Client(app)
    response = client.login(username, password)
    if response.status_code != 302:
        raise RuntimeError(f"login of {username} failed: {response.status_code}")
    return client


def add_user(username: str, *, admin: bool = False, vms: int = 10_000,
             vcpus: int = 100_000, memory_mib: int = 100_000_000, disk_gib: int = 10_000_000):
    """A user with a quota (in an app context). Returns its id."""
    from tests.factories import make_user

    return make_user(username, PASSWORD, is_admin=admin, max_vms=vms, max_vcpus=vcpus,
                     max_memory_mib=memory_mib, max_disk_gib=disk_gib).id


def add_catalog(hosts, image_path: str, *, template: str = "tiny", memory_mib: int = 64,
                disk_gib: int = 1, image: str = "base") -> dict:
    """The lab hosts, an image found on them and a template, through LouCloud's own
    services (in an app context). Returns ids."""
    from loucloud.extensions import db
    from loucloud.models import Host
    from loucloud.services import images, hosts as host_service, templates as template_service

    ids = {}
    for h in hosts:
        existing = db.session.execute(db.select(Host).filter_by(uri=h.uri)).scalar()
        ids[h.index] = (existing or host_service.add_host(h.name, h.uri)).id
    img = images.add_image(image, image_path, "linux")
    # No network card: the lab's hosts have no network (and the figures are the
    # create's, not dnsmasq's).
    tpl = template_service.create_template(template, template_service.Sizes(1, memory_mib, disk_gib), img,
                                           network=template_service.Network("none"))
    return {"servers": ids, "image": img.id, "template": tpl.id}
