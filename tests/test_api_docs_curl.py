"""docs/api.md's examples, as written, against a real server: its shell blocks marked
``<!-- api example: NAME -->`` run with bash, curl and jq against the app served on a
real port (tests/support/browser.py's live_server), one after the other as in one shell
session (the variables a block sets reach the next ones), with only what the reader is
told to set: $LOUCLOUD and $TOKEN. Each block's effect is checked as its reader
would see it, and on the server. Its problem examples (``<!-- api problem: STATUS -->``)
are answers the server really gives.

On libvirt's test driver a VM runs at once and has no address (the example prints "none
yet", what the driver gives), and no VNC port (the harness gives it one after it is
made, as a real host does, for the console link)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from loucloud.extensions import db
from loucloud.models import VM, ConsoleToken, User
from loucloud.services.hypervisors import pool
from tests.conftest import Client
from tests.factories import give_screen, make_catalog
from tests.support.api import ApiClient, make_token

DOC = Path(__file__).resolve().parents[1] / "docs/api.md"
BLOCK_RE = re.compile(r"<!-- api example: ([a-z-]+) -->\n```sh\n(.*?)```", re.S)
PROBLEM_RE = re.compile(r"<!-- api problem: (\d{3}) -->\n```json\n(.*?)```", re.S)
# The worked example's order; the pagination loop runs while web-1 exists.
SEQUENCE = ["template", "create", "wait", "address", "reboot", "list", "console", "delete"]
TOOLS = ("bash", "curl", "jq")


def blocks() -> dict[str, str]:
    found = BLOCK_RE.findall(DOC.read_text())
    assert len(found) == len(dict(found)), "two examples with the same name"
    return dict(found)


def problems() -> dict[int, dict]:
    return {int(status): json.loads(text) for status, text in PROBLEM_RE.findall(DOC.read_text())}


def test_the_examples_are_there():
    assert set(blocks()) == set(SEQUENCE)
    assert set(problems()) == {400, 401, 403, 404, 409, 422, 429}


class Shell:
    """A reader's shell session: each block runs in bash (stopping at its first failing
    command), with the variables the blocks before it set."""

    def __init__(self, folder: Path, env: dict[str, str]):
        self.folder, self.env = folder, env
        self.state = folder / ".session"
        self.state.write_text("")
        self.baseline = set(self._bash("compgen -v").stdout.split())

    def _bash(self, script: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", script], cwd=self.folder, env=self.env,
                              capture_output=True, text=True, timeout=120)

    def run(self, name: str, text: str) -> str:
        known = " ".join(sorted(self.baseline | {"_carry"}))
        script = (f"set -euo pipefail\n. {self.state}\n{text}\n"
                  # what the block set, for the next ones
                  f"for _carry in $(compgen -v); do case \" {known} \" in "
                  f"*\" $_carry \"*) ;; *) declare -p \"$_carry\";; esac; done "
                  f"> {self.state}.new\n"
                  f"mv {self.state}.new {self.state}\n")
        done = self._bash(script)
        assert done.returncode == 0, f"block {name} failed:\n{done.stdout}\n{done.stderr}"
        assert done.stderr == "", f"block {name}: {done.stderr}"
        return done.stdout

    def var(self, name: str) -> str:
        return self._bash(f". {self.state}; printf %s \"${name}\"").stdout


@pytest.fixture
def reader(app, live_server, test_host, tmp_path, user):
    """alice's shell with LOUCLOUD and TOKEN set (and nothing else of the
    test's environment: no proxy)."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"the docs' examples need {', '.join(missing)} "
                    "(scripts/setup-system.sh test installs them)")
    with app.app_context():
        make_catalog(("h1", test_host))   # its template is "small"
    token = make_token(app, "alice")
    folder = tmp_path / "reader"
    folder.mkdir()
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(folder), "LANG": "C.UTF-8",
           "LOUCLOUD": live_server.url, "TOKEN": token}
    return Shell(folder, env)


def _vm(app, name="web-1"):
    with app.app_context():
        vm = db.session.execute(db.select(VM).filter_by(name=name)).scalar_one_or_none()
        if vm is not None:
            db.session.expunge(vm)
        return vm


def _domains(app, uri) -> list[str]:
    """The UUIDs of the host's domains."""
    with app.app_context():
        return pool().call(uri, lambda conn: [d.UUIDString() for d in conn.listAllDomains(0)],
                           timeout=10)


def test_a_vms_life_as_docs_api_md_tells_it(app, live_server, test_host, reader):
    examples = blocks()
    api = ApiClient(app, reader.env["TOKEN"])

    # The template, found by its name: its id, set in the shell for what follows.
    template = reader.run("template", examples["template"]).strip()
    with app.app_context():
        from loucloud.models import Template
        assert template == str(db.session.execute(
            db.select(Template.id).filter_by(name="small")).scalar_one())
    # Create it: the answer's fields, and the VM is alice's, on the host.
    made = json.loads(reader.run("create", examples["create"]))
    vm = _vm(app)
    assert made == {"id": vm.id, "name": "web-1", "host": "h1", "state": "running",
                    "password": None}     # an image without cloud-init: no password made
    with app.app_context():
        assert db.session.get(User, vm.owner_id).username == "alice"
    assert reader.var("VM") == str(vm.id)
    assert vm.uuid in _domains(app, test_host)
    # The test driver gives no VNC port; a real host does.
    give_screen(app, test_host, vm.uuid)

    assert reader.run("wait", examples["wait"]) == "web-1 is running\n"

    # Its address: what the host says (the test driver knows none).
    addresses = api.get(f"/api/v1/vms/{vm.id}").json["addresses"]
    assert reader.run("address", examples["address"]) == \
        f"web-1's address: {addresses[0] if addresses else 'none yet'}\n"

    rebooted = reader.run("reboot", examples["reboot"])
    assert rebooted.startswith("Reboot requested from the guest system of web-1.")

    assert reader.run("list", examples["list"]) == "web-1\n"
    assert reader.var("NEXT") == "null"

    # The console link: alice's one-time token for this VM, to its screen page.
    printed = reader.run("console", examples["console"])
    match = re.fullmatch(r"Open in your browser: (\S+)\n", printed)
    assert match, printed
    url = match.group(1)
    assert url.startswith(f"{live_server.url}/vms/{vm.id}/screen#")
    with app.app_context():
        holders = db.session.execute(db.select(ConsoleToken.user_id).where(
            ConsoleToken.vm_id == vm.id, ConsoleToken.kind == "vnc")).scalars().all()
    assert holders == [vm.owner_id]
    browser = Client(app)
    browser.login("alice")
    assert browser.get(url[len(live_server.url):].split("#")[0]).status_code == 200

    assert reader.run("delete", examples["delete"]) == "web-1 was deleted with its disks.\n"
    assert _vm(app) is None and vm.uuid not in _domains(app, test_host)
    assert api.get(f"/api/v1/vms/{vm.id}").status_code == 404


def _same(doc: dict, answer: dict) -> None:
    """The documented problem is the answer (ids in paths aside)."""
    def norm(problem):
        return {**problem, "instance": re.sub(r"/\d+", "/N", problem["instance"])}
    assert norm(answer) == norm(doc)


def test_the_documented_problems_are_real_answers(app, test_host, admin, user):
    with app.app_context():
        template_id = make_catalog(("h1", test_host)).id
    doc = problems()
    alice = ApiClient(app, make_token(app, "alice"))
    vm_id = alice.post("/api/v1/vms", json={"name": "web-1", "template_id": template_id}
                       ).json["id"]
    answers = {
        400: alice.post("/api/v1/vms", data="{bad", content_type="application/json"),
        401: ApiClient(app, make_token(app, "alice", state="revoked")).get("/api/v1/vms"),
        403: ApiClient(app, make_token(app, "alice", read_only=True)).delete(
            f"/api/v1/vms/{vm_id}"),
        404: alice.get("/api/v1/vms/99"),
        409: alice.post(f"/api/v1/vms/{vm_id}/actions/start"),
        422: alice.post("/api/v1/vms", json={"name": "", "template_id": template_id}),
    }
    limit = int(app.config["API_RATE_LIMIT_TOKEN"].split()[0])
    flood = ApiClient(app, make_token(app, "alice"))
    for _ in range(limit):
        assert flood.get("/api/v1/vms").status_code == 200
    answers[429] = flood.get("/api/v1/vms")
    assert answers[429].headers["Retry-After"]
    assert set(answers) == set(doc)
    for status, response in answers.items():
        assert response.status_code == status
        assert response.mimetype == "application/problem+json"
        _same(doc[status], response.json)
