"""LouCloud: a small self-hosted IaaS console over libvirt."""
from __future__ import annotations

import logging
import os

from flask import Flask

from config import CONFIGS, INSECURE_SECRET_KEYS, INSTANCE_DIR, engine_options


def create_app(config_name: str | None = None, **overrides) -> Flask:
    """Build the application. ``config_name`` is 'default', 'production' or 'test'
    (default: $LOUCLOUD_CONFIG, else 'default'); ``overrides`` win over everything."""
    name = config_name or os.environ.get("LOUCLOUD_CONFIG", "default")
    config = CONFIGS[name]
    # Page templates live in pages/: the "templates" package is the VM templates module.
    app = Flask(__name__, instance_path=str(INSTANCE_DIR), instance_relative_config=True,
                template_folder="pages")
    app.config.from_object(config)
    app.config.from_pyfile("loucloud.cfg", silent=True)
    if app.config.get("DATABASE_NAME"):
        app.config["SQLALCHEMY_DATABASE_URI"] = database_url(app.config)
    app.config.update(overrides)
    if "SQLALCHEMY_ENGINE_OPTIONS" not in app.config:
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(
            app.config["SQLALCHEMY_DATABASE_URI"])
    _init_secret_key(app, config)

    register_logging(app)
    register_extensions(app)
    register_url_converters(app)
    register_blueprints(app)
    register_api(app)
    register_errorhandlers(app)
    register_request_hooks(app)
    register_template_helpers(app)
    register_cli(app)
    return app


def database_url(cfg) -> str:
    """The MariaDB URL from separate settings (DATABASE_USER, _PASSWORD, _HOST, _PORT,
    _NAME in instance/loucloud.cfg), quoted by SQLAlchemy: a password may hold any
    ASCII character, '@', '%', '/' and ':' included (PyMySQL sends it as Latin-1)."""
    from sqlalchemy.engine import URL

    return URL.create("mysql+pymysql", username=cfg.get("DATABASE_USER") or "loucloud",
                      password=cfg.get("DATABASE_PASSWORD"),
                      host=cfg.get("DATABASE_HOST") or "127.0.0.1",
                      port=int(cfg["DATABASE_PORT"]) if cfg.get("DATABASE_PORT") else None,
                      database=cfg["DATABASE_NAME"], query={"charset": "utf8mb4"}
                      ).render_as_string(hide_password=False)


def _init_secret_key(app: Flask, config) -> None:
    if app.config.get("VERIFY_SECRET_KEY"):
        key = app.config.get("SECRET_KEY") or ""
        if key in INSECURE_SECRET_KEYS or len(key) < 32:
            raise RuntimeError(
                "LouCloud refuses to start: set a random SECRET_KEY of at least 32 "
                "characters (LOUCLOUD_SECRET_KEY or instance/loucloud.cfg).")
    else:
        config.init_secret(app)


def register_logging(app: Flask) -> None:
    """The web application logs as loucloud/logs.py says (the command line sets its own
    commands' logging before it makes the app: that is left alone)."""
    from . import logs

    if not app.debug and not app.testing and not logging.getLogger().handlers:
        logs.configure(app.config)


def register_extensions(app: Flask) -> None:
    from flask_babel import gettext as _
    from flask_babel import lazy_gettext as _l

    from .extensions import cache, csrf, db, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(app.root_path),
                                                     "migrations"))
    csrf.init_app(app)
    cache.init_app(app)
    from . import i18n

    i18n.init_app(app)
    from . import taskqueue

    taskqueue.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please log in to see this page.")
    login_manager.login_message_category = "info"

    from .services import auth as auth_service

    login_manager.user_loader(auth_service.load_session)

    @login_manager.unauthorized_handler
    def unauthorized():
        from flask import flash, g, redirect, request, url_for

        from .errors import error_response, wants_json

        g.audit_result, g.error_message = "refused", "not logged in"
        if wants_json():
            return error_response(401, _("Log in first."))
        if request.path == "/":  # the home page: just the login form, no reproach
            return redirect(url_for("auth.login"))
        flash(str(login_manager.login_message), login_manager.login_message_category)
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))

    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        from sqlalchemy import event

        with app.app_context():
            @event.listens_for(db.engine, "connect")
            def _sqlite_pragmas(dbapi_conn, _record):
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA foreign_keys=ON")
                if app.config["SQLALCHEMY_DATABASE_URI"] not in ("sqlite://", "sqlite:///:memory:"):
                    cur.execute("PRAGMA journal_mode=WAL")
                    # SQLite's advice for WAL: a commit no longer waits for the disk
                    # (fsync at checkpoints only). The database stays whole after a
                    # power cut; the last commits before it may be lost, as a host
                    # action cut short is (leftovers and reconciliation cover both).
                    cur.execute("PRAGMA synchronous=NORMAL")
                cur.close()


def register_url_converters(app: Flask) -> None:
    """Before the blueprints: their rules take their converters when they are added."""
    from .helpers import Int64Converter

    app.url_map.converters["int"] = Int64Converter


def register_blueprints(app: Flask) -> None:
    from .audit import bp as audit_bp
    from .auth import bp as auth_bp
    from .bootjobs import bp as bootjobs_bp
    from .dashboard import bp as dashboard_bp
    from .hosts import bp as hosts_bp
    from .images import bp as images_bp
    from .networks import bp as networks_bp
    from .settings import bp as settings_bp
    from .tasks import bp as tasks_bp
    from .templates import bp as templates_bp
    from .users import bp as users_bp
    from .vms import bp as vms_bp
    from .volumes import bp as volumes_bp  # issue 14
    from .batches import bp as batches_bp  # issue 16
    from .groups import bp as groups_bp  # issue 16

    for bp in (auth_bp, vms_bp, tasks_bp, images_bp, templates_bp, hosts_bp, networks_bp, bootjobs_bp,
               users_bp, settings_bp, audit_bp, dashboard_bp, volumes_bp, groups_bp,
               batches_bp):
        app.register_blueprint(bp)


def register_api(app: Flask) -> None:
    from . import api

    api.init_app(app)


def register_errorhandlers(app: Flask) -> None:
    from . import errors

    errors.register(app)


def register_request_hooks(app: Flask) -> None:
    from . import audit, security

    security.register(app)
    audit.register(app)


def register_template_helpers(app: Flask) -> None:
    from . import helpers

    helpers.register(app)


def register_cli(app: Flask) -> None:
    from . import cli

    cli.register(app)
