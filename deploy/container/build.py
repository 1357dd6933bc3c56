#!/usr/bin/env python3
"""Build LouCloud's container images: the LouCloud image (web tier, worker, sampler,
watcher, console proxy: one image, the command says which) and a MariaDB image.

    python3 deploy/container/build.py [--runtime podman|docker] [--base IMAGE]
                                      [--cache DIR] [--tag NAME]

(`make container` runs it.) No container registry is needed:
- the base is a Debian bookworm system made here with debootstrap from Debian's own
  packages (the mirror `manage.py images build` uses) and imported into the runtime as
  ``localhost/loucloud-debian:bookworm-<recipe>``, once per machine and recipe (the
  tarball is kept in the cache too). ``--base docker.io/library/debian:bookworm-slim``
  uses a registry's image instead, where one is reachable;
- the Python packages are the pinned ones (requirements-deploy.txt: mod_wsgi with
  them), made into wheels on this machine by the project's virtualenv pip, so through
  this machine's pip configuration (its package index), and copied into the build;
  mod_wsgi and libvirt-python are compiled here, for Debian 12's Python and libraries,
  which the image has too (its base is the same Debian release);
- the front-end files are the ones `make assets` put in loucloud/static/vendor (from
  npm through package-lock.json), copied as they are: nothing comes from a CDN.
The Debian packages inside the image come from Debian's mirror during the build
(``--network=host``: the build uses this machine's network and name resolution).

Each image is tagged with a digest of everything that goes into it (``:src-<digest>``)
and ``:latest``; when an image with the same digest exists the build is skipped, so a
second run with unchanged inputs takes a second or two. A changed input rebuilds, and
the runtime's layer cache keeps the steps before it (the Debian packages, the wheels).
Everything cached lives in LOUCLOUD_CONTAINER_CACHE (default
/var/cache/loucloud/containers), outside the checkout. Two builds at once (two test
runs) wait for one another.

Python's standard library only (and loucloud/imagebuild.py's constants).
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
from loucloud.imagebuild import MIRROR, SUITE  # noqa: E402  (no Flask: stdlib only)

IMAGE = "localhost/loucloud"
MARIADB_IMAGE = "localhost/loucloud-mariadb"
BASE_IMAGE = "localhost/loucloud-debian"
BASE_RECIPE_VERSION = 1          # change it when _debootstrap_base changes
# What the image holds of the checkout (copied as they are; __pycache__ left out).
APP_FILES = ["loucloud", "migrations", "deploy", "config.py", "wsgi.py", "manage.py",
             "requirements.txt", "requirements-deploy.txt"]
SOURCES = f"""Types: deb
URIs: {MIRROR}
Suites: {SUITE} {SUITE}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: {MIRROR}-security
Suites: {SUITE}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


class BuildError(RuntimeError):
    pass


def default_cache_dir() -> Path:
    return Path(os.environ.get("LOUCLOUD_CONTAINER_CACHE", "/var/cache/loucloud/containers"))


def _say(text: str) -> None:
    print(f"container: {text}", flush=True)


def _run(argv: list[str], step: str, **kw) -> str:
    started = time.monotonic()
    try:
        done = subprocess.run(argv, check=True, text=True, capture_output=True, **kw)
    except subprocess.CalledProcessError as exc:
        tail = "\n".join(((exc.stdout or "") + (exc.stderr or "")).strip().splitlines()[-30:])
        raise BuildError(f"{step} failed ({argv[0]} exit {exc.returncode}):\n{tail}") from None
    _say(f"{step}: {time.monotonic() - started:.0f} s")
    return done.stdout


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def _tree_digest(root: Path) -> str:
    """The digest of a directory's files: their paths, modes and contents."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            h.update(str(path.relative_to(root)).encode() + b"\0")
            h.update(oct(path.stat().st_mode & 0o111).encode())
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


CAP_SYS_RESOURCE = 24


def ulimits() -> list[str]:
    """The limits a container may have here when they are lower than podman's
    defaults: a root without CAP_SYS_RESOURCE (CI sandboxes) cannot raise its own, and
    podman would try (setrlimit fails: "operation not permitted")."""
    import resource

    try:
        status = Path("/proc/self/status").read_text()
        caps = int(next(line.split()[1] for line in status.splitlines()
                        if line.startswith("CapEff:")), 16)
    except (OSError, StopIteration, ValueError):
        caps = -1
    if caps & (1 << CAP_SYS_RESOURCE):
        return []
    out = []
    # At most 32768 processes: podman's own processes had no more on CI's machine (its
    # shell had 96365; 32768 was what setrlimit allowed inside the build, measured).
    for name, limit, most in (("nofile", resource.RLIMIT_NOFILE, 1 << 20),
                              ("nproc", resource.RLIMIT_NPROC, 32768)):
        hard = resource.getrlimit(limit)[1]
        value = most if hard == resource.RLIM_INFINITY else min(hard, most)
        out.append(f"{name}={value}:{value}")
    return out


def runtime_conf(directory: Path) -> Path | None:
    """A containers.conf for what this machine needs of podman, or None when its
    defaults do (then nothing is written). Two cases, both met in CI sandboxes:
    - cgroups in hybrid mode (v1 controllers, v2 beside them in /sys/fs/cgroup/unified):
      Debian's default OCI runtime, crun, refuses them; runc (Debian's package) works;
    - root without CAP_SYS_RESOURCE: containers get this root's limits (ulimits()).
    Use it with CONTAINERS_CONF=<the file> in the environment of podman (and of
    podman-compose, which runs podman); `podman build` takes --ulimit itself."""
    engine = ['runtime = "runc"'] if os.path.ismount("/sys/fs/cgroup/unified") else []
    limits = [f'"{item}"' for item in ulimits()]
    if not engine and not limits:
        return None
    text = "# Written by deploy/container/build.py for this machine (runtime_conf).\n"
    if limits:
        text += f"[containers]\ndefault_ulimits = [{', '.join(limits)}]\n"
    if engine:
        text += "[engine]\n" + "\n".join(engine) + "\n"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "containers.conf"
    if not path.exists() or path.read_text() != text:
        tmp = path.with_name(f".containers.conf.{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, path)
    return path


class Builder:
    def __init__(self, runtime: str = "podman", cache: Path | None = None,
                 base: str | None = None, tag: str = "latest"):
        self.runtime = runtime
        self.cache = cache or default_cache_dir()
        self.base = base
        self.tag = tag

    def exists(self, image: str) -> bool:
        return subprocess.run([self.runtime, "image", "inspect", image], capture_output=True
                              ).returncode == 0

    # -- the base: Debian from Debian's packages, no registry ---------------------------
    def base_image(self) -> str:
        if self.base:
            return self.base
        key = _digest(json.dumps([SUITE, MIRROR, SOURCES, BASE_RECIPE_VERSION]).encode())[:12]
        image = f"{BASE_IMAGE}:{SUITE}-{key}"
        if self.exists(image):
            return image
        tarball = self.cache / f"debian-{SUITE}-{key}.tar"
        if not tarball.exists():
            self._debootstrap_base(tarball)
        _run([self.runtime, "import", "--change", 'CMD ["/bin/bash"]', str(tarball), image],
             f"import the base {image}")
        return image

    def _debootstrap_base(self, tarball: Path) -> None:
        if os.geteuid() != 0:
            raise BuildError("the base image is made with debootstrap, which needs root "
                             "(once per machine); or give --base with a registry's image")
        if not shutil.which("debootstrap"):
            raise BuildError("install debootstrap first (apt-get install debootstrap)")
        _say(f"making the Debian {SUITE} base from {MIRROR} (a few minutes, once)")
        work = Path(tempfile.mkdtemp(prefix="base-", dir=self.cache))
        try:
            root = work / "root"
            _run(["debootstrap", "--variant=minbase", "--components=main", SUITE, str(root),
                  MIRROR], "debootstrap", timeout=1800)
            (root / "etc/apt/sources.list").unlink(missing_ok=True)
            (root / "etc/apt/sources.list.d/debian.sources").write_text(SOURCES)
            # What Docker's Debian images set: no recommends, no documentation.
            (root / "etc/apt/apt.conf.d/90loucloud").write_text(
                'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n')
            (root / "etc/dpkg/dpkg.cfg.d/90loucloud-nodoc").write_text(
                "path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\n"
                "path-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\n")
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for path in (root / junk).glob("*"):
                    if path.is_file():
                        path.unlink()
            tmp = tarball.with_suffix(".tar.tmp")
            _run(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf", str(tmp),
                  "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*", "."],
                 "base tarball")
            os.replace(tmp, tarball)
            for old in self.cache.glob(f"debian-{SUITE}-*.tar"):
                if old != tarball:
                    old.unlink(missing_ok=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    # -- the wheels: the pinned packages through this machine's pip ----------------------
    def wheels(self) -> Path:
        python = ROOT / ".venv/bin/python"
        if not python.exists():
            raise BuildError("no .venv here: run `make venv` first (its pip, with this "
                             "machine's configuration, makes the wheels)")
        facts = [(ROOT / "requirements.txt").read_bytes(),
                 (ROOT / "requirements-deploy.txt").read_bytes(),
                 subprocess.run([str(python), "-c", "import sys; print(sys.version)"],
                                capture_output=True).stdout,
                 subprocess.run(["dpkg-query", "-W", "libvirt-dev", "apache2-dev",
                                 "python3-dev"], capture_output=True).stdout]
        out = self.cache / f"wheels-{_digest(*facts)}"
        if out.is_dir():
            return out
        tmp = Path(tempfile.mkdtemp(prefix="wheels-", dir=self.cache))
        try:
            # mod_wsgi compiled here and never from pip's cache (deploy/README.md, "Which
            # mod_wsgi"): for this Debian's Python, which the image has too.
            _run([str(python), "-m", "pip", "wheel", "-q", "--no-cache-dir",
                  "--no-binary", "mod-wsgi", "-r", "requirements-deploy.txt", "-w", str(tmp)],
                 "wheels", cwd=ROOT, timeout=1800)
            for name in ("requirements.txt", "requirements-deploy.txt"):
                shutil.copy(ROOT / name, tmp / name)
            os.replace(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        for old in self.cache.glob("wheels-*"):
            if old != out and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
        return out

    # -- the images -----------------------------------------------------------------------
    def _context(self, wheels: Path) -> Path:
        vendor = ROOT / "loucloud/static/vendor"
        if not (vendor / "bootstrap").is_dir():
            _run([str(ROOT / "scripts/vendor-assets.sh")], "front-end files (make assets)")
        ctx = Path(tempfile.mkdtemp(prefix="context-", dir=self.cache))
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "instance")
        for name in APP_FILES:
            src = ROOT / name
            if src.is_dir():
                shutil.copytree(src, ctx / "app" / name, ignore=ignore, symlinks=False)
            else:
                (ctx / "app").mkdir(exist_ok=True)
                shutil.copy(src, ctx / "app" / name)
        shutil.copytree(wheels, ctx / "wheels")
        return ctx

    def _build(self, containerfile: str, context: Path, image: str, base: str) -> str:
        digest = _digest(base.encode(), self.image_id(base).encode(),
                         _tree_digest(context).encode())
        tagged = f"{image}:src-{digest}"
        if self.exists(tagged):
            _say(f"{tagged}: built before")
        else:
            limits = [f"--ulimit={item}" for item in ulimits()]
            _run([self.runtime, "build", "--network=host", *limits, "--build-arg", f"BASE={base}",
                  "-f", str(context / containerfile), "-t", tagged, str(context)],
                 f"build {tagged}", timeout=3600)
        _run([self.runtime, "tag", tagged, f"{image}:{self.tag}"], f"tag {image}:{self.tag}")
        self._forget_old(image, tagged)
        return tagged

    def _forget_old(self, image: str, keep: str, newest: int = 3) -> None:
        """Untag all but the newest few :src-<digest> builds of ``image`` (another
        checkout's test run on this machine may be using a recent one; an image a
        container uses is not removed)."""
        listed = subprocess.run([self.runtime, "images", "--format", "json", image],
                                capture_output=True, text=True).stdout
        try:
            rows = json.loads(listed or "[]")
        except ValueError:
            return
        tags = []
        for row in rows:
            for name in row.get("Names") or []:
                if name.startswith(f"{image}:src-") and name != keep:
                    tags.append((row.get("Created", 0), name))
        for _created, name in sorted(tags, reverse=True)[newest - 1:]:
            subprocess.run([self.runtime, "rmi", name], capture_output=True)

    def image_id(self, image: str) -> str:
        return subprocess.run([self.runtime, "image", "inspect", "--format", "{{.Id}}",
                               image], capture_output=True, text=True).stdout.strip()

    def build(self) -> dict:
        if not shutil.which(self.runtime):
            raise BuildError(f"no {self.runtime} here (apt-get install podman)")
        self.cache.mkdir(parents=True, exist_ok=True)
        if self.runtime == "podman" and "CONTAINERS_CONF" not in os.environ:
            conf = runtime_conf(self.cache)
            if conf:
                os.environ["CONTAINERS_CONF"] = str(conf)
                _say(f"this machine's podman settings: CONTAINERS_CONF={conf}")
        started = time.monotonic()
        with open(self.cache / ".build.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)     # another build on this machine: wait
            base = self.base_image()
            db_ctx = Path(tempfile.mkdtemp(prefix="context-db-", dir=self.cache))
            ctx = None
            try:
                for name in ("Containerfile.mariadb", "mariadb-entrypoint"):
                    shutil.copy(HERE / name, db_ctx / name)
                mariadb = self._build("Containerfile.mariadb", db_ctx, MARIADB_IMAGE, base)
                ctx = self._context(self.wheels())
                shutil.copy(HERE / "Containerfile", ctx / "Containerfile")
                loucloud = self._build("Containerfile", ctx, IMAGE, base)
            finally:
                shutil.rmtree(db_ctx, ignore_errors=True)
                if ctx:
                    shutil.rmtree(ctx, ignore_errors=True)
        seconds = round(time.monotonic() - started, 1)
        _say(f"images ready in {seconds} s: {loucloud}, {mariadb}")
        return {"loucloud": loucloud, "mariadb": mariadb, "base": base, "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runtime", default=os.environ.get("LOUCLOUD_CONTAINER_RUNTIME",
                                                            "podman"))
    parser.add_argument("--base", help="a registry's Debian 12 image instead of the "
                        "debootstrap base (e.g. docker.io/library/debian:bookworm-slim)")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--tag", default="latest", help="the tag besides :src-<digest>")
    args = parser.parse_args(argv)
    try:
        result = Builder(args.runtime, args.cache, args.base, args.tag).build()
    except BuildError as exc:
        print(f"container: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
