"""The VM list and the live state of each VM: what each user sees, missing domains,
offline hosts, filters and search."""
from __future__ import annotations

import re

from loucloud.extensions import db
from loucloud.models import VM, Host, User
from tests.support.vms import (  # noqa: F401 (catalog: a fixture)
    catalog,
    create,
    host_call,
    vms,
)


# -- list and state ------------------------------------------------------------------
def test_admin_sees_everything_with_owner_and_host(app, as_admin, as_user, catalog):
    create(as_user, "alices", catalog.id)
    page = as_admin.get("/").get_data(as_text=True)
    assert "alices" in page and "<th>Owner</th>" in page
    assert re.search(r"<td>alice</td>\s*<td>h1</td>", page)


def test_missing_domain_and_offline_host_are_shown(app, as_user, catalog, test_host,
                                                   tmp_path):
    create(as_user, "gone", catalog.id)
    [vm] = vms(app)
    host_call(app, test_host, lambda c: (c.lookupByUUIDString(vm.uuid).destroy(),
                                         c.lookupByUUIDString(vm.uuid).undefine()))
    with app.app_context():
        dead = Host(name="dead", uri=f"qemu+unix:///system?socket={tmp_path / 'x.sock'}")
        db.session.add(dead)
        db.session.flush()
        ghost = VM(name="ghost", owner_id=vm.owner_id, host_id=dead.id,
                   template_id=catalog.id, image_id=catalog.image_id, domain_name="lc-ghost",
                   uuid="11111111-2222-3333-4444-555555555555", vcpus=1, memory_mib=1,
                   disk_gib=1, status=VM.READY)
        db.session.add(ghost)
        db.session.commit()
    page = as_user.get("/").get_data(as_text=True)
    assert 'data-state="missing"' in page and 'data-state="host offline"' in page
    detail = as_user.get(f"/vms/{vm.id}").get_data(as_text=True)
    assert "missing on h1" in detail


def test_state_filter_and_search(app, as_user, catalog):
    create(as_user, "up-1", catalog.id)
    create(as_user, "down-1", catalog.id, start=False)
    def names(query):
        page = as_user.get(f"/?{query}").get_data(as_text=True)
        return set(re.findall(r'href="/vms/\d+">([^<]+)</a>', page))
    assert names("") == {"up-1", "down-1"}
    assert names("state=running") == {"up-1"}
    assert names("state=shut+off") == {"down-1"}
    assert names("q=down") == {"down-1"}


def test_domains_not_made_by_loucloud_are_not_adopted(app, as_admin, catalog, test_host):
    host_call(app, test_host, lambda c: c.defineXML(
        "<domain type='test'><name>foreign</name><memory>1024</memory>"
        "<os><type>hvm</type></os></domain>"))
    page = as_admin.get("/").get_data(as_text=True)
    assert "foreign" not in page


def test_pager_shows_the_ends_and_the_pages_around(app, as_admin, catalog):
    """600 VMs are 12 pages of 50: the pager lists 1 … 4 5 6 7 8 … 12, not 12 links,
    and a page past the end shows the last one."""
    with app.app_context():
        owner = db.session.execute(db.select(User.id).filter_by(username="admin")).scalar()
        host = db.session.execute(db.select(Host.id).filter_by(name="h1")).scalar()
        rows = [dict(name=f"bulk-{k:03d}", owner_id=owner, host_id=host,
                     template_id=catalog.id, image_id=catalog.image_id,
                     domain_name=f"lc-bulk-{k}", uuid=f"00000000-0000-0000-0000-{k:012d}",
                     vcpus=1, memory_mib=64, disk_gib=1, status=VM.READY)
                for k in range(600)]
        db.session.execute(db.insert(VM), rows)
        db.session.commit()

    def pager(query):
        page = as_admin.get(f"/?{query}").get_data(as_text=True)
        pager = page[page.index('aria-label="Pages"'):]
        return re.findall(r'page=(\d+)">\d+</a>|(…)', pager), \
            re.search(r'active"><a [^>]*>(\d+)<', pager).group(1), \
            re.findall(r'href="/vms/\d+">(bulk-\d+)</a>', page)

    links, active, names = pager("page=6")
    assert [n or gap for n, gap in links] == ["1", "…", "4", "5", "6", "7", "8", "…", "12"]
    assert active == "6" and names[0] == "bulk-250" and len(names) == 50
    links, active, names = pager("page=999")
    assert active == "12" and names[-1] == "bulk-599" and len(names) == 50
