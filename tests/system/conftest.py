"""pytest wiring of the system tests: they are marked ``system``; the real guest image,
an app for a whole module, an SSH key. The host lab's session fixture ``lab`` is
tests/support/lab/fixture.py's (through tests/conftest.py: browser tests use it too).
"""

from __future__ import annotations

from pathlib import Path

import pytest

SYSTEM_DIR = Path(__file__).parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "system: needs the host lab (root, libvirtd, qemu, network namespaces); slow",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SYSTEM_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.system)


@pytest.fixture(scope="session")
def guest_image() -> Path:
    """The real guest: `manage.py images build`'s Debian image, built once per machine
    (cached in LOUCLOUD_IMAGE_CACHE, default /var/cache/loucloud/images)."""
    from loucloud import imagebuild

    try:
        return imagebuild.build(say=lambda text: print(f"  {text}"))
    except imagebuild.BuildError as exc:
        pytest.skip(f"the real guest image cannot be built here: {exc}")


@pytest.fixture(scope="module")
def module_app(tmp_path_factory):
    """An app on its own SQLite file for a whole module (its VM boots once)."""
    from loucloud import create_app
    from loucloud.extensions import db
    from loucloud.services.hypervisors import close_pool

    path = tmp_path_factory.mktemp("module-app") / "test.sqlite"
    app = create_app("test", SQLALCHEMY_DATABASE_URI=f"sqlite:///{path}",
                     UPLOAD_DIR=str(path.parent / "uploads"),
                     IMAGE_STORE=str(path.parent / "images"))
    app.config["SITE_URL"] = "http://127.0.0.1:5000"
    with app.app_context():
        db.create_all()
    yield app
    close_pool(app)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="session")
def ssh_key(tmp_path_factory):
    from tests.support.guest import make_ssh_key

    return make_ssh_key(tmp_path_factory.mktemp("ssh"))
