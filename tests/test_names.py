"""Display names in any language (issue 16): VMs, templates, images and hosts take
Unicode letters and digits, normalised (NFKC), refusing control, invisible and
mixed-script look-alike characters (services/names.py); the libvirt names, volume names
and the guest's hostname stay LouCloud's own ASCII; login names stay ASCII. Through the
pages, the command line and the API, on libvirt's test:/// driver."""
from __future__ import annotations

import json
import re
import uuid as uuidlib

import pytest
import yaml
from confusable_homoglyphs import confusables

from loucloud.extensions import db
from loucloud.helpers import download
from loucloud.models import VM, AuditEvent, Host, Image, Template
from loucloud.services import FieldError, cloudinit
from loucloud.services import images as image_service
from loucloud.services.imagecopy import volume_for
from loucloud.services.names import display_name, file_slug
from loucloud.virt import xml
from tests.conftest import BASE_IMAGE
from tests.support.api import ApiClient, make_token
from tests.support.vms import (  # noqa: F401 (catalog: a fixture)
    catalog,
    create,
    domains_on,
    host_call,
    vms,
)

LAB = "实验机-1"
HOSTNAME = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")  # one RFC 1123 label
INVISIBLE = "Names may not hold control or invisible characters; this one holds "
BIDI = "a\u202eb"           # RIGHT-TO-LEFT OVERRIDE
JOINER = "a\u200db"         # ZERO WIDTH JOINER
CONTROL = "a\x07b"          # BEL
LOOK_ALIKE = "p\u0430ypal"  # Latin paypal with a Cyrillic 'а'


# -- the validator -------------------------------------------------------------------
@pytest.mark.parametrize("what,name", [
    ("vm", LAB), ("vm", "lab1-张三"), ("vm", "テスト機-1"), ("vm", "сервер-1"),
    ("vm", "Ελλάδα-2"), ("vm", "café.v2"), ("vm", "हिन्दी-1"), ("vm", "한국-lab"),
    ("template", "小型"), ("template", "Zhang-san 张三 (4 GB)"), ("image", "Debian 12 桌面"),
    ("image", "Ubuntu 22.04 中文版"), ("host", "机房-A.1"), ("group", "计算机 2班 (2024)"),
])
def test_names_in_any_language_are_taken_as_they_are(what, name):
    assert display_name(name, what=what) == name


@pytest.mark.parametrize("name", ["lab1-张三", "Debian 12 桌面", "テスト機-1"])
def test_latin_with_chinese_or_japanese_is_one_script_where_the_library_says_dangerous(name):
    """What confusable-homoglyphs 3.3.1 says of common CJK + Latin names: its
    is_dangerous (mixed scripts and any character with a homoglyph anywhere: 'l' looks
    like '1') calls them dangerous, so names.py asks it a narrower question (is a letter
    of one of the name's scripts confusable with a letter of another of them?) and, as
    UTS #39's highly restrictive level does, counts Latin + Han + Kana as one writing
    system (inside Japanese, Katakana ト has a Han homoglyph 卜)."""
    assert confusables.is_dangerous(name)
    assert not confusables.is_confusable("lab1-张三", preferred_aliases=["han"])
    assert display_name(name, what="image") == name


@pytest.mark.parametrize("value,stored", [
    ("ＶＭ１", "VM1"),                     # full-width letters and digits
    ("  web-1\t", "web-1"),              # outer spaces
    ("e\u0301t\u00e9", "\u00e9t\u00e9"),  # a combining accent composed
    ("ｗｅｂ－１", "web-1"),                 # a full-width hyphen
])
def test_names_are_stored_normalised(value, stored):
    assert display_name(value, what="vm") == stored


def test_spaces_are_collapsed_where_a_kind_takes_them():
    assert display_name("Debian\u3000 12   桌面", what="image") == "Debian 12 桌面"


@pytest.mark.parametrize("name,message", [
    (BIDI, INVISIBLE + "U+202E RIGHT-TO-LEFT OVERRIDE."),
    (JOINER, INVISIBLE + "U+200D ZERO WIDTH JOINER."),
    (CONTROL, INVISIBLE + "U+0007."),
    ("a\ufeffb", INVISIBLE + "U+FEFF ZERO WIDTH NO-BREAK SPACE."),
    ("a\u3164b", INVISIBLE + "U+3164 HANGUL FILLER."),
    ("a\ue000b", INVISIBLE + "U+E000."),                  # private use
    ("a\U000e0041b", INVISIBLE + "U+E0041 TAG LATIN CAPITAL LETTER A."),
    (LOOK_ALIKE, "This name mixes Cyrillic and Latin letters that look alike (Cyrillic 'а' "
                 "looks like Latin 'a'); write it in one script."),
    ("οk-go", "This name mixes Greek and Latin letters that look alike (Greek 'ο' looks "
              "like Latin 'o'); write it in one script."),
    ("web\u06f1", "This name mixes Arabic and Latin letters that look alike (Arabic '۱' "
                  "looks like Latin 'l'); write it in one script."),
    ("a-\u0301b", "Put accents and vowel signs on letters, at most 4 on one letter, each once."),
    ("a😀", "Use 1 to 64 letters (of any language), digits, '-', '_' or '.'."),
    ("实" * 65, "Use 1 to 64 letters (of any language), digits, '-', '_' or '.'."),
])
def test_what_display_names_refuse_and_why(name, message):
    with pytest.raises(FieldError) as refused:
        display_name(name, what="vm")
    assert str(refused.value) == message and refused.value.field == "name"


def test_unassigned_code_points_are_refused():
    with pytest.raises(FieldError, match="control or invisible"):
        display_name("a\u0378b", what="vm")  # unassigned in every Unicode version yet


# -- VMs through the three doors -----------------------------------------------------
def test_a_vm_named_in_chinese_through_the_page(app, as_user, catalog, test_host):
    response = create(as_user, LAB, catalog.id)
    assert response.status_code == 302, response.get_data(as_text=True)
    [vm] = vms(app)
    assert vm.name == LAB and vm.domain_name == f"lc-{vm.uuid}"
    assert vm.volume_name == f"lc-{vm.uuid}.qcow2"
    assert domains_on(app, test_host) == {vm.domain_name: "running"}
    desc = xml.parse_domain(host_call(
        app, test_host, lambda conn: conn.lookupByUUIDString(vm.uuid).XMLDesc(0)))
    assert desc.title == LAB
    page = as_user.get(response.headers["Location"]).get_data(as_text=True)
    assert f"<title>{LAB} · LouCloud</title>" in page
    assert LAB in as_user.get("/").get_data(as_text=True)
    assert LAB in as_user.get("/?q=实验").get_data(as_text=True)
    assert LAB in as_user.get("/?q=实验机－１").get_data(as_text=True)  # normalised too
    screen = as_user.get(f"/vms/{vm.id}/screen").get_data(as_text=True)
    assert f"Console of {LAB}" in screen and f'data-vm-name="{LAB}"' in screen
    with app.app_context():
        [event] = db.session.execute(db.select(AuditEvent)
                                     .where(AuditEvent.action.like("vms.%"))).scalars().all()
        assert event.target == f"name '{LAB}'" and event.result == "ok"


def test_a_right_to_left_name_is_isolated_where_it_meets_other_text(app, as_user, catalog,
                                                                    test_host):
    """An Arabic name beside a badge or a digit would take its neighbours into its own
    direction; the pages hold it in <bdi>."""
    name = "مختبر-1"
    response = create(as_user, name, catalog.id)
    assert response.status_code == 302, response.get_data(as_text=True)
    [vm] = vms(app)
    page = as_user.get(f"/vms/{vm.id}").get_data(as_text=True)
    assert f'<h1 class="h3 me-auto mb-0"><bdi>{name}</bdi> ' in page
    assert f'<li class="breadcrumb-item active"><bdi>{name}</bdi></li>' in page


def test_a_vm_named_in_chinese_through_the_command_line(app, user, catalog):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["vms", "create", "--owner=alice", "--template=small",
                                 "--no-start", "--", LAB])
    assert result.exit_code == 0, result.output
    assert result.output == f"created {LAB} on h1\n"
    listed = runner.invoke(args=["vms", "list", "--owner=alice"]).output.splitlines()
    assert listed[1].split()[1] == LAB
    # the table counts a Chinese character as two columns: the next column lines up
    assert listed[0].index("OWNER") == listed[1].index("alice") + len("实验机")
    rows = json.loads(runner.invoke(args=["vms", "list", "--owner=alice", "--json"]).output)
    assert [r["name"] for r in rows] == [LAB]
    assert runner.invoke(args=["vms", "start", "--owner=alice", "--", "实验机－１"]) \
        .exit_code == 0  # found by its normalised form
    with app.app_context():
        [event] = db.session.execute(db.select(AuditEvent)
                                     .where(AuditEvent.action == "vms.create")).scalars().all()
        assert event.target == LAB


def test_a_vm_named_in_chinese_through_the_api(app, user, catalog):
    alice = ApiClient(app, make_token(app, "alice"))
    r = alice.post("/api/v1/vms", json={"name": LAB, "template_id": catalog.id})
    assert r.status_code == 201, r.json
    assert r.json["name"] == LAB
    assert alice.get(r.headers["Location"]).json["name"] == LAB
    assert [v["name"] for v in alice.get("/api/v1/vms").json["items"]] == [LAB]
    assert b'"name":"\\u5b9e\\u9a8c\\u673a-1"' in r.data.replace(b" ", b"")  # as api.md says
    bidi = alice.post("/api/v1/vms", json={"name": BIDI, "template_id": catalog.id})
    message = INVISIBLE + "U+202E RIGHT-TO-LEFT OVERRIDE."
    assert (bidi.status_code, bidi.json["detail"], bidi.json["errors"]) == \
        (422, message, {"name": message})


@pytest.mark.parametrize("name,message", [
    (BIDI, "U+202E RIGHT-TO-LEFT OVERRIDE"), (JOINER, "U+200D ZERO WIDTH JOINER"),
    (CONTROL, "U+0007"), (LOOK_ALIKE, "mixes Cyrillic and Latin letters"),
])
def test_refused_names_say_why_on_every_door(app, as_user, user, catalog, test_host, name,
                                             message):
    page = create(as_user, name, catalog.id)
    assert page.status_code == 400 and message in page.get_data(as_text=True)
    api = ApiClient(app, make_token(app, "alice")).post(
        "/api/v1/vms", json={"name": name, "template_id": catalog.id})
    assert api.status_code == 422 and message in api.json["errors"]["name"]
    cli = app.test_cli_runner().invoke(args=["vms", "create", "--owner=alice",
                                             "--template=small", "--", name])
    assert cli.exit_code == 1 and message in cli.stderr
    assert vms(app) == [] and domains_on(app, test_host) == {}
    with app.app_context():
        targets = db.session.execute(db.select(AuditEvent.target)).scalars().all()
    web = [t for t in targets if t.startswith("name ")]
    assert web and all("\u202e" not in t and "\u200d" not in t for t in web)  # repr'd


def test_names_equal_once_normalised_are_the_same_name(app, as_user, catalog):
    assert create(as_user, "ＶＭ１", catalog.id).status_code == 302
    assert [vm.name for vm in vms(app)] == ["VM1"]
    response = create(as_user, "VM1", catalog.id)
    assert response.status_code == 400
    assert "You already have a VM named VM1." in response.get_data(as_text=True)


def test_names_keep_every_plane_and_meet_their_duplicates_on_both_databases(any_app,
                                                                             test_host):
    """MariaDB's utf8mb4 keeps a 4-byte character (𠮷, CJK Extension B); on both
    databases a name equal to a stored one once normalised is the same name."""
    from loucloud.services.vms import create as vm_create
    from tests.factories import make_catalog, make_user

    with any_app.app_context():
        owner = make_user("carol")
        template = db.session.merge(make_catalog(("h1", test_host)))
        vm_create.create_vm(owner, "𠮷野家-1", template, start=False)
        vm_create.create_vm(db.session.merge(owner), "ＶＭ１", template, start=False)
        with pytest.raises(FieldError, match="You already have a VM named VM1."):
            vm_create.create_vm(db.session.merge(owner), "VM1", template, start=False)
        db.session.expire_all()
        assert sorted(db.session.execute(db.select(VM.name)).scalars()) == \
            ["VM1", "𠮷野家-1"]


def test_a_clone_takes_a_chinese_name_and_not_a_duplicate_one(app, as_user, catalog):
    assert create(as_user, LAB, catalog.id).status_code == 302
    [source] = vms(app)
    as_user.post(f"/vms/{source.id}/poweroff")
    headers = {"Accept": "application/json"}
    taken = as_user.post(f"/vms/{source.id}/clone", {"name": "实验机－１"}, headers=headers)
    assert taken.status_code == 400
    assert taken.get_json()["error"] == f"You already have a VM named {LAB}."
    bidi = as_user.post(f"/vms/{source.id}/clone", {"name": BIDI}, headers=headers)
    assert bidi.status_code == 400 and "U+202E" in bidi.get_json()["error"]
    ok = as_user.post(f"/vms/{source.id}/clone", {"name": "实验机-2"}, headers=headers)
    assert ok.status_code in (200, 202), ok.get_json()
    assert sorted(vm.name for vm in vms(app)) == [LAB, "实验机-2"]


# -- the guest's hostname --------------------------------------------------------------
@pytest.mark.parametrize("name,host", [
    (LAB, "xn---1-ne1d935b3q6d"), ("小型", "xn--xgsx8h"), ("lab1-张三", "xn--lab1--3h1hy43h"),
    ("Иван_1", "xn---1-6kch3a6a"), ("web-1", "web-1"),
])
def test_the_hostname_of_a_name_in_any_language_is_its_idna_label(name, host):
    assert cloudinit.hostname_for(name) == host
    assert HOSTNAME.match(host)
    if host.startswith("xn--"):  # it decodes back to the name (lower-case, '_' as '-')
        assert host[4:].encode().decode("punycode") == name.lower().replace("_", "-")


def test_a_long_name_gives_the_longest_label_that_fits():
    host = cloudinit.hostname_for("实验机" * 21)
    assert HOSTNAME.match(host) and len(host) <= 63
    assert ("实验机" * 21).startswith(host[4:].encode().decode("punycode"))


def test_the_seed_of_a_chinese_vm_names_a_valid_hostname():
    seed = cloudinit.Seed(instance_id=str(uuidlib.uuid4()),
                          hostname=cloudinit.hostname_for(LAB))
    files = cloudinit.read_iso(cloudinit.build_iso(seed))
    meta = yaml.safe_load(files["meta-data"])
    user = yaml.safe_load(files["user-data"])
    assert meta["local-hostname"] == user["hostname"] == "xn---1-ne1d935b3q6d"
    assert HOSTNAME.match(meta["local-hostname"])


# -- templates, images, hosts ------------------------------------------------------------
def test_a_template_named_in_chinese_and_its_duplicates(app, as_admin, catalog):
    form = {"name": "小型", "image_id": 1, "vcpus": 1, "memory_mib": 512, "disk_gib": 2,
            "notes": ""}
    assert as_admin.post("/templates/new", form).status_code == 302
    again = as_admin.post("/templates/new", {**form, "name": "  小型 "})
    assert again.status_code == 400
    assert "A template with this name exists." in again.get_data(as_text=True)
    with app.app_context():
        names = db.session.execute(db.select(Template.name).order_by(Template.id)).scalars()
        assert list(names) == ["small", "小型"]
    assert "小型" in as_admin.get("/templates/").get_data(as_text=True)
    result = app.test_cli_runner().invoke(args=[
        "templates", "add", "--image=base", "--vcpus=1", "--memory=512", "--disk=2", "--",
        "ｓｍａｌｌ"])  # full-width: small once normalised
    assert result.exit_code == 1 and "A template with this name exists." in result.stderr
    assert app.test_cli_runner().invoke(args=["templates", "delete", "--", "小型"]).exit_code == 0


def test_an_image_named_with_chinese_through_the_page_and_its_volume_names(app, as_admin,
                                                                           test_host):
    as_admin.post("/hosts/new", {"name": "机房-A", "uri": test_host})
    response = as_admin.post("/images/new", {"name": "Debian 12 桌面", "path": BASE_IMAGE,
                                              "os_type": "linux"})
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(db.select(Image.name)).scalar() == "Debian 12 桌面"
        assert db.session.execute(db.select(Host.name)).scalar() == "机房-A"
        assert image_service.image_by_name("Debian 12 桌面").path == BASE_IMAGE
    assert "Debian 12 桌面" in as_admin.get("/images/").get_data(as_text=True)
    # An uploaded image's file and volume are named by an ASCII slug of the name, and
    # names that differ only outside ASCII never share a file.
    desktop, server = volume_for("Debian 12 桌面", "qcow2"), volume_for("Debian 12 服务器", "qcow2")
    assert desktop != server and desktop.isascii() and server.isascii()
    assert re.fullmatch(r"image-Debian-12-[0-9a-f]{8}\.qcow2", desktop)
    assert volume_for("Debian 12", "qcow2") == "image-Debian-12.qcow2"  # as before
    assert image_service.volume_name_for("debian") == "image-debian.qcow2"


def test_a_host_named_in_chinese_and_one_refused(app, as_admin, test_host):
    bad = as_admin.post("/hosts/new", {"name": "主机\u202e1", "uri": test_host})
    assert bad.status_code == 400 and "U+202E" in bad.get_data(as_text=True)
    assert as_admin.post("/hosts/new", {"name": "主机-1", "uri": test_host}).status_code == 302
    boss = ApiClient(app, make_token(app, "admin"))
    r = boss.post("/api/v1/hosts", json={"name": "-主机", "uri": "test:///default"})
    assert r.status_code == 422 and "starting with a letter or digit" in r.json["errors"]["name"]
    with app.app_context():
        assert db.session.execute(db.select(Host.name)).scalars().all() == ["主机-1"]


# -- login names stay ASCII ----------------------------------------------------------------
def test_login_names_stay_ascii_and_the_form_says_so(app, as_admin):
    page = as_admin.get("/users/new").get_data(as_text=True)
    assert "ASCII letters" in page and "full name may use any language" in page
    result = app.test_cli_runner().invoke(args=["users", "create", "--", "张三"],
                                          env={"LOUCLOUD_USER_PASSWORD": "a good password 1"})
    assert result.exit_code == 1
    assert "Login names use 2 to 32 ASCII letters" in result.stderr
    assert "full names may use any language" in result.stderr
    ok = app.test_cli_runner().invoke(args=["users", "create", "--full-name=张三", "--",
                                            "zhangsan"],
                                      env={"LOUCLOUD_USER_PASSWORD": "a good password 1"})
    assert ok.exit_code == 0, ok.output


# -- downloads -------------------------------------------------------------------------
def test_a_download_named_in_chinese_has_both_file_names(app):
    with app.test_request_context():
        response = download("x,y\n", f"{LAB} passwords.csv", "text/csv")
    slug = file_slug(f"{LAB} passwords", "download")
    assert response.headers["Content-Disposition"] == (
        f"attachment; filename={slug}.csv; filename*=UTF-8''"
        "%E5%AE%9E%E9%AA%8C%E6%9C%BA-1%20passwords.csv")
    assert slug.isascii() and slug.startswith("1-passwords-")
    with app.test_request_context():
        plain = download(b"{}", "vms.json", "application/json")
    assert plain.headers["Content-Disposition"] == "attachment; filename=vms.json"
