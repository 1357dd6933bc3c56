"""A production-like LouCloud for tests: real Apache + mod_wsgi with deploy/'s
configuration, real MariaDB, the console proxy and the task worker as their systemd units
run them, over HTTPS with a certificate made for the test. Set up by running deploy/README.md's
marked blocks as they are written (README_BLOCKS), with a site.conf of the test's own:
its directory (links to this checkout, an instance folder of its own), its service user
(loucloud-test, never the production one), its ports and certificate."""
from __future__ import annotations

import datetime
import ipaddress
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from loucloud.virt.sources import is_zero
from tests.support.webclient import CSRF_RE

ROOT = Path(__file__).resolve().parents[2]
APACHE = "/usr/sbin/apache2"
MODULES = "/usr/lib/apache2/modules"
DEBIAN_STATUS_CONF = "/etc/apache2/mods-available/status.conf"  # as Debian enables it
NEEDED_MODULES = ["mpm_event", "authz_core", "authz_host", "mime", "alias", "setenvif",
                  "headers", "proxy", "proxy_http", "ssl", "socache_shmcb",
                  "reqtimeout", "status"]  # + built-ins; Debian's Apache has these on
# Directories are linked to this checkout; the top-level scripts are copied, because
# Python resolves a linked script to its real directory (and would find that instance).
LINKED = ["loucloud", "migrations", ".venv", "deploy", "scripts", "node_modules",
          "Makefile", "requirements.txt", "requirements-deploy.txt", "requirements-test.txt",
          "package.json", "package-lock.json"]
COPIED = ["config.py", "wsgi.py", "manage.py"]
USER = "loucloud-test"          # the tests' own service user, never "loucloud"
README = ROOT / "deploy/README.md"
SITE_CONF = "/etc/loucloud/site.conf"   # where README's commands read the site's values
BLOCK_RE = re.compile(r"<!-- deployment test: ([a-z-]+) -->\n```sh\n(.*?)```", re.S)


def readme_blocks() -> dict[str, str]:
    """deploy/README.md's blocks marked ``<!-- deployment test: NAME -->``, by name."""
    return {name: text for name, text in BLOCK_RE.findall(README.read_text())}


def parse_unit(text: str) -> dict:
    """What systemd takes from a unit to start it: user, directory, environment, command."""
    out: dict = {"env": {}}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep or line.startswith("#"):
            continue
        if key == "Environment":
            out["env"].update(item.split("=", 1) for item in shlex.split(value))
        elif key in ("User", "WorkingDirectory", "ExecStart"):
            out[key] = value
    return out


def unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "the deployment test needs root (Apache, a service user, MariaDB)"
    if not Path(APACHE).exists():
        return "Apache is not installed (apt-get install apache2 apache2-dev)"
    if not (ROOT / ".venv/bin/mod_wsgi-express").exists():
        return "mod_wsgi is not built in .venv (pip install -r requirements-deploy.txt)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


class Deployment:
    def __init__(self, database_url: str, database: dict | None = None,
                 config: dict | None = None):
        """``database``: the separate DATABASE_* settings instead of one URL; ``config``:
        more settings for loucloud.cfg (they override the ones made here)."""
        self.database_url, self.database = database_url, database
        self.config = config or {}
        self.dir = Path(tempfile.mkdtemp(prefix="loucloud-deploy-"))
        self.dir.chmod(0o755)
        self.https_port, self.http_port, self.console_port = free_port(), free_port(), free_port()
        self.site = f"https://localhost:{self.https_port}"
        self.admin_password = "deployment admin password"
        self.apache: subprocess.Popen | None = None
        self.proxy: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.logs = self.dir / "logs"

    # -- the layout deploy/README.md describes -------------------------------------
    def prepare(self) -> "Deployment":
        for name in LINKED:
            (self.dir / name).symlink_to(ROOT / name)
        for name in COPIED:
            shutil.copy(ROOT / name, self.dir / name)
        self.logs.mkdir()
        (self.dir / "run").mkdir()
        shutil.chown(self.dir / "run", "www-data", "www-data")
        self.cert, self.key = make_certificate(self.dir)
        self.site_conf.write_text(
            f"LOUCLOUD_HOME={self.dir}\nLOUCLOUD_USER={USER}\n"
            f"LOUCLOUD_SERVER_NAME=localhost:{self.https_port}\nLOUCLOUD_TLS=yes\n"
            f"LOUCLOUD_CERTIFICATE={self.cert}\nLOUCLOUD_CERTIFICATE_KEY={self.key}\n"
            f"LOUCLOUD_HTTP_ADDRESS=127.0.0.1:{self.http_port}\n"
            f"LOUCLOUD_HTTPS_ADDRESS=127.0.0.1:{self.https_port}\n"
            f"LOUCLOUD_CONSOLE_PORT={self.console_port}\n")
        try:
            self.run_block("user")
        except RuntimeError:
            if not _user_exists(USER):  # else another test run made it a moment ago
                raise
        self.run_block("instance")
        config = self.dir / "instance/loucloud.cfg"
        # The block made it with its final owner and mode; then the editor's part.
        assert config.stat().st_mode & 0o777 == 0o640
        assert (config.stat().st_uid, config.stat().st_gid) == (0, pwd.getpwnam(USER).pw_gid)
        with open(config, "a") as f:   # appended: the example's own lines come first
            f.write(f"SECRET_KEY = {secrets.token_hex(32)!r}\n"
                    + "".join(f"{k} = {v!r}\n" for k, v in self._database().items()) +
                    f"SITE_URL = {self.site!r}\n"
                    'CONSOLE_URL = "/websockify"\n'
                    + "".join(f"{k} = {v!r}\n" for k, v in self.config.items()))
        assert config.stat().st_mode & 0o777 == 0o640
        self.run_block("install")
        self._write_apache_config()
        return self

    def _database(self) -> dict:
        """The DATABASE_* settings, as deploy/loucloud.cfg.example has them (they
        replace the example's): given, or taken from the database URL."""
        if self.database:
            return self.database
        from sqlalchemy.engine import make_url

        url = make_url(self.database_url)
        return {"DATABASE_USER": url.username, "DATABASE_PASSWORD": url.password,
                "DATABASE_HOST": url.host, "DATABASE_PORT": url.port,
                "DATABASE_NAME": url.database}

    @property
    def site_conf(self) -> Path:
        return self.dir / "site.conf"

    def run_block(self, name: str, env: dict | None = None) -> str:
        """Run deploy/README.md's block ``name`` as root, as written, with this
        deployment's site.conf in place of /etc/loucloud/site.conf (in the block, and
        for deploy/install.py and deploy/upgrade through LOUCLOUD_SITE) and its Apache
        site file and units written here (install.py's environment). Returns its output."""
        script = readme_blocks()[name].replace(SITE_CONF, str(self.site_conf))
        if name == "upgrade":  # this directory is not a clone: nothing to pull
            script = "\n".join(line for line in script.splitlines() if line != "git pull")
        result = subprocess.run(["sh", "-eu", "-c", script], cwd=self.dir,
                                env={**self._env(), "HOME": "/root",
                                     "LOUCLOUD_SITE": str(self.site_conf),
                                     "LOUCLOUD_APACHE_SITE": str(self.apache_site),
                                     "LOUCLOUD_SYSTEMD_DIR": str(self.dir / "systemd"),
                                     **(env or {})},
                                capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            raise RuntimeError(f"deploy/README.md's {name!r} block failed:\n{script}\n"
                               f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result.stdout + result.stderr

    @property
    def apache_site(self) -> Path:
        return self.dir / "apache-site.conf"

    def unit(self, name: str) -> dict:
        """A systemd unit deploy/install.py wrote for this site, parsed."""
        return parse_unit((self.dir / "systemd" / f"loucloud-{name}.service").read_text())

    def _write_apache_config(self) -> None:
        # Only the LoadModule line: the daemon's python-home (loucloud-site.conf) says
        # which Python environment the application runs in.
        wsgi = subprocess.run([str(ROOT / ".venv/bin/mod_wsgi-express"), "module-config"],
                              capture_output=True, text=True, check=True).stdout
        wsgi = "\n".join(line for line in wsgi.splitlines() if line.startswith("LoadModule"))
        modules = "\n".join(f"LoadModule {m}_module {MODULES}/mod_{m}.so"
                            for m in NEEDED_MODULES)
        (self.dir / "httpd.conf").write_text(f"""
ServerRoot {self.dir}
ServerName localhost
Define APACHE_LOG_DIR {self.logs}
PidFile {self.dir}/run/httpd.pid
DefaultRuntimeDir {self.dir}/run
Mutex file:{self.dir}/run default
Listen 127.0.0.1:{self.https_port}
Listen 127.0.0.1:{self.http_port}
User www-data
Group www-data
{modules}
{wsgi}
WSGISocketPrefix {self.dir}/run/wsgi
TypesConfig /etc/mime.types
ErrorLog {self.logs}/error.log
LogLevel warn
LogFormat "%h %l %u %t \\"%r\\" %>s %b \\"%{{Referer}}i\\" \\"%{{User-Agent}}i\\"" combined
SSLSessionCache shmcb:{self.dir}/run/ssl_scache(512000)
Include {DEBIAN_STATUS_CONF}
Include {self.apache_site}
""")

    # -- processes -------------------------------------------------------------------
    def manage(self, *args: str, input_env: dict | None = None) -> subprocess.CompletedProcess:
        """manage.py as the service user (what `runuser -u loucloud -- ...` runs)."""
        env = self._env(input_env)
        return subprocess.run([str(self.dir / ".venv/bin/python"), "manage.py", *args],
                              cwd=self.dir, env=env, user=USER, group=USER, extra_groups=[],
                              capture_output=True,
                              text=True, timeout=120)

    def _env(self, extra: dict | None = None) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("LOUCLOUD_", "DATABASE_URL", "PYTEST", "HOST", "PORT"))}
        env.update({"LOUCLOUD_CONFIG": "production", "HOME": str(self.dir)})
        env.update(extra or {})
        return env

    def install(self) -> None:
        """What deploy/README.md does once: the schema, then the administrator."""
        self.run_block("schema", {"LOUCLOUD_ADMIN_PASSWORD": self.admin_password})

    def _service(self, name: str, log: str, extra_env: dict | None = None) -> subprocess.Popen:
        """A LouCloud service as systemd starts it from the unit install.py wrote: its
        user, directory, environment and command line."""
        unit = self.unit(name)
        command = shlex.split(unit["ExecStart"])
        with open(self.logs / log, "ab") as out:
            return subprocess.Popen(
                command, cwd=unit["WorkingDirectory"],
                env=self._env({**unit["env"], **(extra_env or {})}), user=unit["User"],
                group=unit["User"], extra_groups=[], stdout=out, stderr=subprocess.STDOUT)

    def start(self) -> "Deployment":
        self.proxy = self._service("console", "console.log")
        with open(self.logs / "apache.out", "wb") as out:
            self.apache = subprocess.Popen([APACHE, "-f", str(self.dir / "httpd.conf"),
                                            "-DFOREGROUND"], cwd=self.dir,
                                           stdout=out, stderr=subprocess.STDOUT)
        self._wait_http()
        return self

    def reload_apache(self) -> None:
        """A graceful restart, as systemctl reload apache2 does: new configuration and
        new daemon processes, the listening sockets kept."""
        subprocess.run([APACHE, "-f", str(self.dir / "httpd.conf"), "-k", "graceful"],
                       check=True, timeout=60)
        time.sleep(1)
        self._wait_http()

    def start_worker(self, extra_env: dict | None = None) -> subprocess.Popen:
        """The worker as loucloud-worker.service runs it (``extra_env``: say
        LOUCLOUD_TASK_BROKER), its output in logs/worker.log."""
        self.stop_worker()
        self.worker = self._service("worker", "worker.log", extra_env)
        return self.worker

    def stop_worker(self) -> None:
        """SIGTERM, as systemctl stop sends it."""
        proc, self.worker = self.worker, None
        _terminate(proc)

    def _wait_http(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.apache.poll() is not None:
                raise RuntimeError("Apache exited: " + self.tail())
            try:
                if requests.get(self.site + "/login", verify=str(self.cert),
                                timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError("LouCloud did not answer through Apache: " + self.tail())

    def tail(self) -> str:
        out = []
        for name in ("apache.out", "error.log", "loucloud-error.log", "console.log",
                     "worker.log"):
            path = self.logs / name
            if path.exists():
                out.append(f"--- {name}\n{path.read_text(errors='replace')[-2500:]}")
        return "\n".join(out)

    def wsgi_processes(self, group: str = "loucloud") -> list[int]:
        """PIDs of this deployment's mod_wsgi daemon processes of one process group
        (loucloud: the pages; lc-uploads: the upload doors): named after their
        group, and children of this Apache (another test run may have a deployment too)."""
        if self.apache is None:
            return []
        pids = []
        name = f"(wsgi:{group})".encode()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if (entry / "cmdline").read_bytes().startswith(name) and \
                            _parent_pid(entry) == self.apache.pid:
                        pids.append(int(entry.name))
                except OSError:
                    continue
        return pids

    def stop(self) -> None:
        self.stop_worker()
        for proc in (self.apache, self.proxy):
            _terminate(proc)
        shutil.rmtree(self.dir, ignore_errors=True)


def _terminate(proc: subprocess.Popen | None) -> None:
    """SIGTERM, and SIGKILL if it is still there 30 s later."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _parent_pid(proc_entry: Path) -> int:
    """The parent of the process at /proc/<pid> (raises OSError once it is gone)."""
    return int((proc_entry / "stat").read_text().rsplit(")", 1)[1].split()[1])


class WebClient:
    """A user's browser, as far as HTTP goes: cookies, CSRF tokens, HTTPS."""

    def __init__(self, deployment: Deployment):
        self.base = deployment.site
        self.http = requests.Session()
        self.http.trust_env = False  # REQUESTS_CA_BUNDLE would replace our certificate
        self.http.verify = str(deployment.cert)

    def get(self, path: str, **kw) -> requests.Response:
        return self.http.get(self.base + path, timeout=30, allow_redirects=False, **kw)

    def csrf(self) -> str:
        for path in ("/login", "/profile"):
            match = CSRF_RE.search(self.get(path).text)
            if match:
                return match.group(1)
        raise AssertionError("no CSRF token on /login or /profile")

    def post(self, path: str, data: dict | None = None, **kw) -> requests.Response:
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf())
        # Over HTTPS the CSRF check also wants a same-site Referer, as browsers send.
        headers = {"Referer": self.base + path, **kw.pop("headers", {})}
        return self.http.post(self.base + path, data=data, timeout=120,
                              allow_redirects=False, headers=headers, **kw)

    def login(self, username: str, password: str) -> requests.Response:
        return self.post("/login", {"username": username, "password": password})

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)


MiB = 1 << 20


class Uploader:
    """An image upload as static/upload.js sends it, over HTTP(S) through Apache: the
    CSRF token from the upload page's <meta name="csrf-token">, sent as X-CSRFToken
    (with the same-origin Referer a browser's fetch() sends); the facts as JSON; the
    file in chunks of the size the server states, each at the offset the server says;
    then finish; then the image page's JSON until the worker has copied it."""

    def __init__(self, client: WebClient):
        self.client = client
        page = client.get("/images/upload")
        if page.status_code != 200:
            raise RuntimeError(f"GET /images/upload: HTTP {page.status_code}")
        self.csrf = CSRF_RE.search(page.text).group(1)
        self.base = client.base + "/images/uploads"

    def headers(self, content_type: str | None = None) -> dict:
        headers = {"X-CSRFToken": self.csrf, "Accept": "application/json",
                   "Referer": self.client.base + "/images/upload"}
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def begin(self, name: str, path: Path, **fields) -> requests.Response:
        body = {"name": name, "filename": path.name, "size": path.stat().st_size,
                "format": "auto", "sha256": "", "os_type": "auto", "firmware": "bios",
                "cloud_init": False, "login_user": "", **fields}
        return self.client.http.post(self.base, data=json.dumps(body), timeout=60,
                                     headers=self.headers("application/json"))

    def chunk(self, upload_id: str, offset: int, data: bytes) -> requests.Response:
        return self.client.http.post(f"{self.base}/{upload_id}/chunk?offset={offset}",
                                     data=data, timeout=300,
                                     headers=self.headers("application/octet-stream"))

    def zeros(self, upload_id: str, offset: int, run: int) -> requests.Response:
        return self.client.http.post(
            f"{self.base}/{upload_id}/chunk?offset={offset}&zeros={run}", timeout=300,
            headers=self.headers())

    def status(self, upload_id: str) -> requests.Response:
        return self.client.http.get(f"{self.base}/{upload_id}", timeout=60,
                                    headers=self.headers())

    def finish(self, upload_id: str) -> requests.Response:
        return self.client.http.post(f"{self.base}/{upload_id}/finish", timeout=600,
                                     headers=self.headers())

    @staticmethod
    def _zero(window: bytes, at: int) -> bool:
        """Whether the MiB of the window at ``at`` (or what is left of it) is all zeros
        (as upload.js compares words: data is seen at once)."""
        return is_zero(window[at:at + MiB])

    def _zero_blocks(self, window: bytes) -> int:
        """Bytes at the window's start that are whole MiBs of zeros (upload.js's
        zeroBlocks; the file's last block may be shorter)."""
        at = 0
        while at < len(window) and self._zero(window, at):
            at += min(MiB, len(window) - at)
        return at

    def _data_length(self, window: bytes) -> int:
        """Bytes at the window's start before its first whole MiB of zeros."""
        at = min(MiB, len(window))
        while at < len(window) and not self._zero(window, at):
            at += min(MiB, len(window) - at)
        return at

    def send(self, upload: dict, path: Path, on_chunk=None, *, say_zeros: bool = True) -> int:
        """Every chunk from the server's offset to the end, as upload.js does (a 409
        names the offset to go on from): whole MiBs of zeros said as runs (?zeros=N,
        no body), the rest sent, each request at most the size the server states.
        ``say_zeros=False`` sends every byte (a client that does not look). Returns
        the requests made."""
        offset, size, step, sent = upload["offset"], path.stat().st_size, \
            upload["chunk_bytes"], 0
        limit = upload.get("zero_run_bytes", 0) if say_zeros else 0
        with open(path, "rb") as f:
            while offset < size:
                f.seek(offset)
                window = f.read(min(step, size - offset))
                run = self._zero_blocks(window) if limit else 0
                if run:
                    whole = run == len(window)
                    while whole and offset + run < size and run + step <= limit:
                        window = f.read(min(step, size - offset - run))  # it goes on
                        zeros = self._zero_blocks(window)
                        run, whole = run + zeros, zeros == len(window)
                    response = self.zeros(upload["id"], offset, run)
                else:
                    length = self._data_length(window) if limit else len(window)
                    response = self.chunk(upload["id"], offset, window[:length])
                body = response.json()
                if response.status_code == 409 and isinstance(body.get("offset"), int):
                    offset = body["offset"]
                    continue
                if response.status_code != 200:
                    raise RuntimeError(f"chunk at {offset}: HTTP {response.status_code} "
                                       f"{body}")
                offset, sent = body["offset"], sent + 1
                if on_chunk:
                    on_chunk(offset)
        return sent

    def image(self, image_id: int) -> dict:
        """The image page's JSON: its copies on the hosts and their progress."""
        response = self.client.http.get(f"{self.client.base}/images/{image_id}",
                                        headers={"Accept": "application/json"}, timeout=60)
        response.raise_for_status()
        return response.json()

    def wait_copied(self, image_id: int, hosts: int, timeout: float = 600,
                    poll: float = 0.25) -> dict:
        """Until the image is present on ``hosts`` hosts (the worker copied it); raises
        when a copy failed or the time is up."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.image(image_id)
            copies = seen["copies"]
            failed = [c for c in copies if c["state"] == "failed"]
            if failed:
                raise RuntimeError(f"copies failed: {failed}")
            if sum(1 for c in copies if c["present"]) >= hosts:
                return seen
            if time.monotonic() > deadline:
                raise RuntimeError(f"not copied to {hosts} hosts in {timeout} s: {seen}")
            time.sleep(poll)


def sparse_raw_disk(path: Path, size: int, data_every: int = 32 << 20,
                    data_bytes: int = 4 << 20) -> Path:
    """A raw disk of ``size`` bytes, sparse, with real (random) data: ``data_bytes``
    every ``data_every`` bytes from the start (the first block holds a boot sector's
    signature), and a last block at the very end; holes between."""
    with open(path, "wb") as f:
        f.truncate(size)
        for offset in range(0, size, data_every):
            f.seek(offset)
            f.write(os.urandom(min(data_bytes, size - offset)))
        tail = min(65536, size)
        f.seek(size - tail)
        f.write(os.urandom(tail))
        f.seek(510)
        f.write(b"\x55\xaa")
    return path


