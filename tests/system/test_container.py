"""LouCloud in containers (deploy/README.md, "Containers"): the images built by
deploy/container/build.py from Debian's packages and the project's pinned wheels (no
registry), and the stack of deploy/container/compose.yaml run by podman-compose, as
written: MariaDB, the web tier (Apache + mod_wsgi over HTTPS), the worker, the sampler,
the watcher and the console proxy. The web answers and an administrator logs in; the
worker's container runs a task queued in the web's; the web container reaches a lab
hypervisor over qemu+ssh:// with the key mounted as the document says (an OpenSSH
server in the lab host's namespaces, in front of its libvirtd), and the watcher's
container sees it online; a VM's console opens through the web container's Apache and
the console container's proxy."""
from __future__ import annotations

import re
import ssl
import subprocess
import time

import pytest
from websockets.sync.client import connect

from tests.support import container, rfb
from tests.support.deployment import WebClient

# The first test builds the images when their inputs changed: on a machine that never
# built them, the debootstrap base and the wheels too (about 4 minutes here, longer on
# a loaded machine); with the images there, the module takes about a minute.
pytestmark = pytest.mark.timeout(1200)


@pytest.fixture(scope="module")
def images():
    reason = container.unavailable_reason()
    if reason:
        pytest.skip(reason)
    built = container.build_images()
    print(f"\n  container images: {built}")
    return built


@pytest.fixture(scope="module")
def ssh_host(lab, tmp_path_factory):
    """Lab host 1 behind an OpenSSH server, and a key that logs in as root there."""
    keys = tmp_path_factory.mktemp("container-ssh")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "loucloud-container",
                    "-f", str(keys / "id_ed25519")], check=True, timeout=30)
    host = lab.host(1)
    endpoint = lab.start_sshd(host, (keys / "id_ed25519.pub").read_text())
    yield endpoint, keys / "id_ed25519"
    lab.stop_sshd(host)


@pytest.fixture(scope="module")
def stack(images, ssh_host):
    endpoint, key = ssh_host
    running = container.Stack(images, ssh_key=key,
                              known_hosts=endpoint.known_hosts_line + "\n")
    try:
        running.start()
        print(f"  stack {running.project} up in {running.start_seconds} s")
        yield running
    except BaseException:
        print(running.tail())
        raise
    finally:
        running.stop()


class Site:
    """What WebClient needs of a deployment: the address and the certificate."""

    def __init__(self, stack: container.Stack):
        self.site, self.cert = stack.site, stack.cert


def test_the_web_answers_over_https_and_the_administrator_logs_in(stack):
    client = WebClient(Site(stack))
    page = client.get("/login")
    assert page.status_code == 200 and 'name="csrf_token"' in page.text
    assert page.headers["Server"] == "Apache"          # no version (ServerTokens Prod)
    assert "max-age" in page.headers.get("Strict-Transport-Security", "")
    # The front-end files are in the image, served by Apache (no CDN).
    assert client.get("/static/vendor/bootstrap/bootstrap.min.css").status_code == 200
    assert client.login("admin", "wrong password").status_code == 401
    assert client.login("admin", stack.admin_password).status_code == 302
    assert client.get("/profile").status_code == 200
    # The secrets reach LouCloud's processes, not Apache's www-data children (their
    # environment read from this side, as root of the machine).
    secret = (stack.dir / "secrets/secret_key").read_text()
    environments = stack.environments("web", user="www-data")
    assert environments and all("APACHE_RUN_USER=www-data" in env for env in environments)
    assert not any(secret in env for env in environments)
    denied = stack.podman("exec", "-u", "www-data", stack.container("web"), "sh", "-c",
                          "cat /run/loucloud/secrets/* 2>&1; true")
    assert secret not in denied.stdout and "Permission denied" in denied.stdout
    # Plain HTTP only redirects to the site.
    plain = client.http.get(f"http://127.0.0.1:{stack.http_port}/login", timeout=30,
                            allow_redirects=False)
    assert plain.status_code == 301
    assert plain.headers["Location"].startswith(stack.site)


def test_the_worker_container_runs_a_task_queued_in_the_web_container(stack):
    ping = stack.manage("tasks", "ping")
    assert ping.returncode == 0, ping.stdout + ping.stderr + stack.logs("worker")
    answered = re.search(r"The worker (\S+):\d+ answered", ping.stdout)
    assert answered, ping.stdout
    assert answered.group(1) == stack.hostname("worker")     # not the web's own


def test_the_web_container_reaches_a_hypervisor_over_ssh(stack, ssh_host, lab):
    endpoint, _key = ssh_host
    admin = WebClient(Site(stack))
    assert admin.login("admin", stack.admin_password).status_code == 302
    uri = endpoint.uri("/var/lib/loucloud/.ssh/id_ed25519")
    added = admin.post("/hosts/new", {"name": "h1", "uri": uri})
    assert added.status_code == 302, re.sub(r"\s+", " ", added.text)[-1500:]
    detail = admin.get(added.headers["Location"])
    # libvirt answered from the lab host's own namespaces: its hostname.
    assert lab.host(1).hostname in detail.text
    # The watcher's container keeps it online (its own connection, its own key copy).
    deadline = time.monotonic() + 60
    while True:
        hosts = admin.get("/hosts/status.json").json()
        h1 = next(h for h in hosts if h["name"] == "h1")
        if h1["online"] and h1["hostname"] == lab.host(1).hostname:
            break
        assert time.monotonic() < deadline, (h1, stack.logs("watcher"))
        time.sleep(1)
    # The worker's container reaches it too (image copies go from there).
    virsh = stack.podman("exec", "-u", "loucloud", stack.container("worker"),
                         "virsh", "-c", uri, "hostname")
    assert virsh.returncode == 0, virsh.stderr
    assert virsh.stdout.strip() == lab.host(1).hostname


def test_a_console_opens_through_the_web_and_console_containers(stack, ssh_host, lab):
    endpoint, _key = ssh_host
    admin = WebClient(Site(stack))
    assert admin.login("admin", stack.admin_password).status_code == 302
    if not any(h["name"] == "h1" for h in admin.get("/hosts/status.json").json()):
        uri = endpoint.uri("/var/lib/loucloud/.ssh/id_ed25519")
        assert admin.post("/hosts/new", {"name": "h1", "uri": uri}).status_code == 302
    host = lab.host(1)
    path = lab.make_image(host, "container-base.qcow2", 64 * 1024 * 1024)
    assert admin.post("/images/new", {"name": "ct-base", "path": path,
                                      "os_type": "linux"}).status_code == 302
    image_id = re.search(r'<option value="(\d+)"', admin.get("/templates/new").text).group(1)
    assert admin.post("/templates/new", {"name": "ct-tiny", "image_id": image_id,
                                         "vcpus": 1, "memory_mib": 128,
                                         "disk_gib": 1}).status_code == 302
    template = re.search(r'href="/templates/(\d+)/edit"', admin.get("/templates/").text)
    made = admin.post("/vms/new", {"name": "in-containers", "template_id": template.group(1),
                                   "host_id": 0, "start": "y"})
    assert made.status_code == 302, re.sub(r"\s+", " ", made.text)[-1500:]
    vm_id = made.headers["Location"].rsplit("/", 1)[1]
    try:
        token = admin.post(f"/vms/{vm_id}/console").headers["Location"].split("#", 1)[1]
        # wss://<site>/websockify: Apache in the web container passes it to the console
        # container, which answers the VM's VNC server on the lab host.
        ws_url = stack.site.replace("https://", "wss://") + f"/websockify?token={token}"
        context = ssl.create_default_context(cafile=str(stack.cert))
        with connect(ws_url, origin=stack.site, ssl=context, open_timeout=20,
                     close_timeout=1,
                     additional_headers={"Cookie": admin.cookie_header()}) as ws:
            seen = rfb.handshake(ws)
        assert seen["greeting"].startswith(b"RFB 003.") and seen["rectangles"] >= 1
    except BaseException:
        print(stack.logs("console"), stack.logs("web"))
        raise
    finally:
        assert admin.post(f"/vms/{vm_id}/delete").status_code == 302
