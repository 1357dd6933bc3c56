"""VMs of cloud images on libvirt's test driver: the create form's password and boot
jobs, refused clearly when wrong; the guest's password reset refused without an agent;
the text console's token (one-time, user-bound, the serial kind only)."""
from __future__ import annotations

import re

import pytest

from loucloud.extensions import db
from loucloud.models import VM, AuditEvent, ConsoleToken, Host, Template, User
from loucloud.services import FieldError, bootjobs
from loucloud.services import images as image_service
from loucloud.services import templates as template_service
from loucloud.services.console import ConsoleRefused, consume, consume_serial
from loucloud.services.vms import create as vm_create
from tests.conftest import Client
from tests.factories import make_catalog, make_user


@pytest.fixture
def cloud(app, test_host):
    """A cloud image (cloud-init, login user debian) and its template "cloud" on h1,
    the plain template "small", alice and the administrator."""
    with app.app_context():
        make_user("admin", is_admin=True)
        make_user("alice")
        small = make_catalog(("h1", test_host))
        image = image_service.add_image("cloud", "/var/lib/images/base.raw", guest=(
            image_service.Guest("linux", True, "debian", "bios")))
        template = template_service.create_template(
            "cloud", template_service.Sizes(1, 512, 2), image)
        return {"cloud": template.id, "small": small.id}


def _form(template_id, **extra):
    return {"name": "box", "template_id": template_id, "host_id": 0, "start": "y", **extra}


@pytest.mark.parametrize("password, why", [("short", "at least"), ("aaaaaaaaaa", "simple"),
                                           ("alice", "at least")])
def test_a_bad_login_password_is_a_form_error_and_nothing_is_made(app, cloud, password,
                                                                   why):
    alice = Client(app)
    alice.login("alice")
    response = alice.post("/vms/new", _form(cloud["cloud"], password=password))
    assert response.status_code == 400 and why in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(db.select(VM)).first() is None


def test_an_image_without_cloud_init_takes_no_password(app, cloud):
    with app.app_context():
        alice = db.session.execute(db.select(User).filter_by(username="alice")).scalar_one()
        with pytest.raises(FieldError) as info:
            vm_create.create_vm(alice, "box", db.session.get(Template, cloud["small"]),
                                password="a long enough one 1")
    assert info.value.field == "password" and "no first-boot data" in str(info.value)


def test_a_password_is_made_and_shown_once_when_none_is_given(app, cloud):
    alice = Client(app)
    alice.login("alice")
    response = alice.post("/vms/new", _form(cloud["cloud"]))
    assert response.status_code == 302
    page = alice.get(response.headers["Location"]).get_data(as_text=True)
    assert 'data-category="password"' in page and "shown only now" in page
    assert 'data-category="password"' not in alice.get(response.headers["Location"]) \
        .get_data(as_text=True)
    # the audit log keeps the creation, never the password shown once
    password = re.search(r"with the password (\S+) ", page).group(1)
    with app.app_context():
        logged = db.session.execute(db.select(AuditEvent.action, AuditEvent.message)).all()
    assert ("vms.create" in {a for a, _ in logged}) and password not in repr(logged)


def test_only_boot_jobs_offered_to_users_may_be_chosen(app, cloud):
    with app.app_context():
        hidden = bootjobs.create_boot_job("admin-only", "runcmd: [[true]]").id
        offered = bootjobs.create_boot_job("htop", "packages: [htop]", user_choice=True).id
        alice = db.session.execute(db.select(User).filter_by(username="alice")).scalar_one()
        template = db.session.get(Template, cloud["cloud"])
        with pytest.raises(FieldError, match="Choose among the boot jobs offered"):
            vm_create.create_vm(alice, "box", template, boot_job_ids=[hidden])
        assert [j.name for j in bootjobs.jobs_for(template, [offered])] == ["htop"]


def test_defaults_and_the_templates_boot_jobs_run_in_its_vms(app, cloud):
    with app.app_context():
        bootjobs.create_boot_job("motd", "runcmd: [[true]]", is_default=True)
        job = bootjobs.create_boot_job("tools", "packages: [htop]")
        template = db.session.get(Template, cloud["cloud"])
        template_service.update_template(template, "cloud", template_service.Sizes(1, 512, 2),
                                         template.image_id, boot_job_ids=[job.id])
        assert [j.name for j in bootjobs.jobs_for(template)] == ["motd", "tools"]


def test_password_reset_without_an_agent_is_refused_clearly(app, cloud):
    alice = Client(app)
    alice.login("alice")
    response = alice.post("/vms/new", _form(cloud["small"]))
    vm_id = int(response.headers["Location"].rsplit("/", 1)[1])
    response = alice.post(f"/vms/{vm_id}/password", {"user": "root",
                                                     "password": "too short"})
    assert response.status_code == 302
    page = alice.get(response.headers["Location"]).get_data(as_text=True)
    assert "Use at least" in page   # the service checks the password first
    bad_user = alice.post(f"/vms/{vm_id}/password", {"user": "Root Admin",
                                                     "password": "long enough pass 12"})
    assert "Linux user name" in alice.get(bad_user.headers["Location"]).get_data(as_text=True)


def test_a_text_console_token_works_once_and_only_for_the_serial_line(app, cloud):
    alice = Client(app)
    alice.login("alice")
    response = alice.post("/vms/new", _form(cloud["small"]))
    vm_id = int(response.headers["Location"].rsplit("/", 1)[1])
    response = alice.post(f"/vms/{vm_id}/serial")
    location = response.headers["Location"]
    assert f"/vms/{vm_id}/terminal#" in location
    token = location.split("#", 1)[1]
    with app.app_context():
        alice_id = db.session.execute(db.select(User.id).filter_by(username="alice")).scalar()
        row = db.session.execute(db.select(ConsoleToken)).scalar_one()
        assert row.kind == "serial"
        with pytest.raises(ConsoleRefused, match="serial token presented to the vnc"):
            consume(token, alice_id)
        # The test driver has no console streams: the token is used up, then refused.
        with pytest.raises(ConsoleRefused, match="not supported"):
            consume_serial(token, alice_id)
        with pytest.raises(ConsoleRefused, match="already used"):
            consume_serial(token, alice_id)


def test_the_terminal_page_allows_xterms_styles_and_nothing_more(app, cloud):
    alice = Client(app)
    alice.login("alice")
    response = alice.post("/vms/new", _form(cloud["small"]))
    vm_id = int(response.headers["Location"].rsplit("/", 1)[1])
    csp = alice.get(f"/vms/{vm_id}/terminal").headers["Content-Security-Policy"]
    assert "style-src 'self' 'unsafe-inline'" in csp and "script-src 'self';" in csp
    assert "unsafe-inline" not in alice.get(f"/vms/{vm_id}").headers[
        "Content-Security-Policy"]


def test_a_demo_host_takes_no_seed(app, cloud):
    """libvirt's test driver takes no uploads and boots nothing: no seed is made."""
    with app.app_context():
        alice = db.session.execute(db.select(User).filter_by(username="alice")).scalar_one()
        host = db.session.execute(db.select(Host)).scalar_one()
        host.uri = host.uri  # noqa: PLW0127 - a test:// URI: is_demo
        vm = vm_create.create_vm(alice, "box", db.session.get(Template, cloud["cloud"]),
                                 password="a long enough one 1")
        assert host.is_demo and vm.seed_volume is None and vm.boot_job_names == ""
