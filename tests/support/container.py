"""LouCloud in containers, for tests: the images that deploy/container/build.py makes
(cached between runs: a second build with the same inputs takes seconds), and the stack
of deploy/container/compose.yaml run by podman-compose as the document says, under a
project name of this run's own (its containers, volumes and network are named after
it) with ports picked free, its secrets, certificate and keys in a directory of its own.
Two runs on one machine never share or remove each other's."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from tests.support.deployment import free_port, make_certificate

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy/container/compose.yaml"
SERVICES = ("db", "web", "worker", "sampler", "watcher", "console")


def build_module():
    spec = importlib.util.spec_from_file_location("loucloud_container_build",
                                                  ROOT / "deploy/container/build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "the container test needs root (podman, debootstrap for the base image)"
    for program, package in (("podman", "podman"), ("podman-compose", "podman-compose"),
                             ("debootstrap", "debootstrap")):
        if not shutil.which(program):
            return f"no {program} (apt-get install {package}; make test installs it)"
    return None


def podman_env() -> dict:
    """The environment for podman and podman-compose: this machine's containers.conf
    when it needs one (build.runtime_conf)."""
    env = dict(os.environ)
    if "CONTAINERS_CONF" not in env:
        conf = build_module().runtime_conf(build_module().default_cache_dir())
        if conf:
            env["CONTAINERS_CONF"] = str(conf)
    return env


def build_images() -> dict:
    """The two images, built when their inputs changed (build.py's digest tags)."""
    build = build_module()
    started = time.monotonic()
    result = build.Builder().build()
    result["test_seconds"] = round(time.monotonic() - started, 1)
    return result


class Stack:
    """One run of compose.yaml: ``start()`` brings it up and waits until the web
    answers /login; ``stop()`` removes its containers, volumes and network."""

    def __init__(self, images: dict, ssh_key: Path | None = None,
                 known_hosts: str = ""):
        self.images = images
        self.dir = Path(tempfile.mkdtemp(prefix="lc-container-"))
        self.project = f"lct{os.getpid()}-{secrets.token_hex(3)}"   # see remove_stale
        self.https_port, self.http_port = free_port(), free_port()
        self.site = f"https://localhost:{self.https_port}"
        self.admin_password = "container admin password"
        # MariaDB's password with the characters URLs and shells care about.
        self.db_password = "db pa$s@%/:\"'`\\word " + secrets.token_hex(4)
        for sub in ("secrets", "tls", "ssh", "pki"):
            (self.dir / sub).mkdir()
        (self.dir / "secrets/secret_key").write_text(secrets.token_hex(32))
        (self.dir / "secrets/db_password").write_text(self.db_password)
        (self.dir / "secrets/admin_password").write_text(self.admin_password)
        for path in (self.dir / "secrets").iterdir():
            path.chmod(0o600)   # the containers read them as root: any owner will do
        self.cert, _key = make_certificate(self.dir / "tls")
        if ssh_key:
            shutil.copy(ssh_key, self.dir / "ssh/id_ed25519")
            (self.dir / "ssh/id_ed25519").chmod(0o600)
        if known_hosts:
            (self.dir / "ssh/known_hosts").write_text(known_hosts)
        self.env = {**podman_env(),
                    "LOUCLOUD_IMAGE": images["loucloud"],
                    "LOUCLOUD_MARIADB_IMAGE": images["mariadb"],
                    "LOUCLOUD_SITE_URL": self.site,
                    "LOUCLOUD_SECRETS": str(self.dir / "secrets"),
                    "LOUCLOUD_TLS_DIR": str(self.dir / "tls"),
                    "LOUCLOUD_SSH_DIR": str(self.dir / "ssh"),
                    "LOUCLOUD_PKI_DIR": str(self.dir / "pki"),
                    "LOUCLOUD_PUBLISH_ADDRESS": "127.0.0.1",
                    "LOUCLOUD_HTTPS_PORT": str(self.https_port),
                    "LOUCLOUD_HTTP_PORT": str(self.http_port)}

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(["podman-compose", "-p", self.project, "-f", str(COMPOSE),
                               *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, cwd=self.dir)

    def podman(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(["podman", *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"     # podman-compose 1.0's names

    def remove_stale(self) -> None:
        """The stacks of test runs that died without removing theirs (their pid is in
        the project's name, lct<pid>-<random>): containers, volumes, networks."""
        found = self.podman("ps", "-a", "--format", "{{.Labels}}", "--filter",
                            "label=io.podman.compose.project").stdout
        for name in set(re.findall(r"io\.podman\.compose\.project:(lct\d+-[0-9a-f]{6})",
                                   found)):
            pid = int(name[3:].split("-")[0])
            if name != self.project and not Path(f"/proc/{pid}").exists():
                self._remove(name)

    def start(self, timeout: float = 180) -> "Stack":
        started = time.monotonic()
        self.remove_stale()
        up = self.compose("up", "-d")
        if up.returncode != 0:
            raise RuntimeError(f"podman-compose up failed:\n{up.stdout[-3000:]}\n"
                               f"{up.stderr[-3000:]}")
        deadline = time.monotonic() + timeout
        while True:
            try:
                answer = requests.get(self.site + "/login", verify=str(self.cert),
                                      timeout=5)
                if answer.status_code == 200:
                    break
            except requests.RequestException:
                pass
            gone = [s for s in SERVICES if self.state(s) not in ("running", "")]
            if gone or time.monotonic() > deadline:
                raise RuntimeError(f"the web did not answer /login (stopped: {gone}):\n"
                                   + self.tail())
            time.sleep(1)
        self.start_seconds = round(time.monotonic() - started, 1)
        return self

    def state(self, service: str) -> str:
        done = self.podman("inspect", "--format", "{{.State.Status}}", self.container(service))
        return done.stdout.strip()

    def manage(self, *args: str, service: str = "web",
               timeout: float = 120) -> subprocess.CompletedProcess:
        """manage.py in a container, as deploy/README.md says to run it there."""
        return self.podman("exec", self.container(service), "loucloud-entrypoint",
                           "manage", *args, timeout=timeout)

    def hostname(self, service: str) -> str:
        done = self.podman("inspect", "--format", "{{.Config.Hostname}}",
                           self.container(service))
        return done.stdout.strip()

    def environments(self, service: str, user: str) -> list[str]:
        """The environments of a container's processes that run as ``user``, read
        from /proc of this machine (the container's processes are in its pid
        namespace)."""
        import pwd

        pid1 = self.podman("inspect", "--format", "{{.State.Pid}}",
                           self.container(service)).stdout.strip()
        ns = os.readlink(f"/proc/{pid1}/ns/pid")
        uid = pwd.getpwnam(user).pw_uid
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.readlink(entry / "ns/pid") != ns or entry.stat().st_uid != uid:
                    continue
                found.append((entry / "environ").read_bytes().replace(b"\0", b"\n")
                             .decode(errors="replace"))
            except OSError:
                continue
        return found

    def logs(self, service: str, lines: int = 40) -> str:
        done = self.podman("logs", "--tail", str(lines), self.container(service))
        return (done.stdout + done.stderr).strip()

    def tail(self) -> str:
        return "\n".join(f"--- {s} ---\n{self.logs(s)}" for s in SERVICES)

    def stop(self) -> None:
        self.compose("down", "-v", "-t", "5")
        # Whatever down left (a container that failed to start, the network).
        self._remove(self.project)
        shutil.rmtree(self.dir, ignore_errors=True)

    def _remove(self, project: str) -> None:
        label = f"label=io.podman.compose.project={project}"
        ids = self.podman("ps", "-aq", "--filter", label).stdout.split()
        if ids:
            self.podman("rm", "-f", "-t", "1", *ids)
        volumes = self.podman("volume", "ls", "-q", "--filter", label).stdout.split()
        if volumes:
            self.podman("volume", "rm", "-f", *volumes)
        self.podman("network", "rm", "-f", f"{project}_default")

    def facts(self) -> str:
        return json.dumps({"project": self.project, "site": self.site,
                           "images": self.images})
