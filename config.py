"""LouCloud configuration classes.

The embedded default keeps everything in the instance folder (``instance/``): an SQLite
database and a generated secret key. ``DATABASE_URL`` points the app at MySQL/MariaDB
(``mysql+pymysql://user:pass@host/db``) or another SQLAlchemy URL.
"""
import os
import secrets
from pathlib import Path

# Not resolve(): a deployment may be a directory of links to a checkout, with its own
# instance folder.
BASE_DIR = Path(__file__).absolute().parent
INSTANCE_DIR = Path(os.environ.get("LOUCLOUD_INSTANCE", BASE_DIR / "instance"))

# Secret keys that must never be used in production (the old Flask docs' examples and ours).
INSECURE_SECRET_KEYS = {"", "dev", "change-me", "changeme", "secret", "CHANGE-ME"}


def _instance_secret_key() -> str:
    """Return the secret key stored in the instance folder, creating it on first use."""
    path = INSTANCE_DIR / "secret_key"
    if not path.exists():
        INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()


def engine_options(url: str) -> dict:
    if url in ("sqlite://", "sqlite:///:memory:"):
        return {}
    if url.startswith("sqlite"):
        # A long busy timeout: concurrent writers queue instead of failing; a roomy pool,
        # because writers hold their connection while they queue for the lock.
        return {"connect_args": {"timeout": 30}, "pool_size": 20, "max_overflow": 80}
    # pre_ping + recycle: a restarted MySQL server costs no failed request. The pool is
    # larger than a process's threads (mod_wsgi threads=8), so nobody queues for it.
    return {"pool_pre_ping": True, "pool_recycle": 280, "pool_size": 10, "max_overflow": 20}


class Config:
    SECRET_KEY = os.environ.get("LOUCLOUD_SECRET_KEY")  # None: use the instance key
    SQLALCHEMY_DATABASE_URI = os.environ.get(
        "DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'loucloud.sqlite'}")
    # SQLALCHEMY_ENGINE_OPTIONS: set by create_app from the final database URL (which
    # instance/loucloud.cfg may give), unless given explicitly.
    SQLALCHEMY_TRACK_MODIFICATIONS = False

    SESSION_COOKIE_NAME = "loucloud_session"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = os.environ.get("LOUCLOUD_HTTPS", "") == "1"
    REMEMBER_COOKIE_DURATION = 0
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the (server-side) session

    # Flask-Caching: a file cache in the instance folder is shared by every process of
    # one machine (mod_wsgi runs several); CACHE_TYPE/CACHE_* env vars may pick redis etc.
    CACHE_TYPE = os.environ.get("CACHE_TYPE", "FileSystemCache")
    CACHE_DIR = os.environ.get("CACHE_DIR", str(INSTANCE_DIR / "cache"))
    CACHE_DEFAULT_TIMEOUT = 300
    CACHE_THRESHOLD = 5000

    # Argon2id parameters (OWASP: m >= 19 MiB, t >= 2). RFC 9106 "low memory" profile.
    PASSWORD_TIME_COST = 3
    PASSWORD_MEMORY_KIB = 65536
    PASSWORD_PARALLELISM = 4

    # Login throttling (services/auth.py): failures within the window for one account
    # from one address, from one address for any account, and for one account from
    # many addresses; past each limit a delay of LOGIN_FIRST_DELAY_SECONDS that doubles
    # with each further failure, at most the window. Nobody locks a user out: the
    # user's own address counts alone, and addresses the user logged in from lately
    # are not slowed by guesses from elsewhere.
    LOGIN_WINDOW_SECONDS = 15 * 60
    LOGIN_MAX_FAILURES_PER_USER = 5         # one account from one address
    LOGIN_MAX_FAILURES_PER_ADDRESS = 20     # one address, any account
    LOGIN_MAX_ADDRESSES_PER_USER = 10       # addresses failing for one account
    LOGIN_FIRST_DELAY_SECONDS = 30
    LOGIN_KNOWN_ADDRESS_DAYS = 30           # a success from an address: known this long

    # The address users open LouCloud at. The console proxy accepts websockets only from
    # pages of this origin (and of CONSOLE_ALLOWED_ORIGINS).
    SITE_URL = os.environ.get("LOUCLOUD_SITE_URL") or \
        f"http://{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"

    # Where the browser's console websocket goes. Empty (development): the proxy on its
    # own port of the same host. Behind Apache: /websockify (the same origin).
    CONSOLE_URL = os.environ.get("CONSOLE_URL", "")
    CONSOLE_PROXY_HOST = os.environ.get("CONSOLE_PROXY_HOST", "127.0.0.1")
    CONSOLE_PROXY_PORT = int(os.environ.get("CONSOLE_PROXY_PORT", "6080"))
    # Origins the console proxy accepts (comma separated); empty: derived from the site.
    CONSOLE_ALLOWED_ORIGINS = os.environ.get("CONSOLE_ALLOWED_ORIGINS", "")

    # The host `manage.py init` registers when its libvirtd answers.
    LOCAL_HOST_URI = os.environ.get("LOUCLOUD_LOCAL_HOST_URI", "qemu:///system")

    # Pages that follow VM states (polling) share each host's states this long: at most
    # one bulk call per host per interval, however many pages are open.
    LIVE_STATE_CACHE_SECONDS = 1

    # An open page's stream of state changes lasts this long; the browser's EventSource
    # then connects again by itself (a worker thread is not held for ever).
    EVENT_STREAM_SECONDS = 55

    # Long work (image copies, migrations, batch creates) runs in `manage.py worker`, fed
    # through huey: "" keeps the queue in an SQLite file of the instance folder (no
    # server needed); redis://host:port/db uses that Redis server.
    TASK_BROKER = os.environ.get("LOUCLOUD_TASK_BROKER", "")
    # Logging of every LouCloud process (loucloud/logs.py): LouCloud's messages from this
    # level; standard error (the journal, Apache's error log) or this file.
    LOG_LEVEL = os.environ.get("LOUCLOUD_LOG_LEVEL", "INFO")
    LOG_FILE = os.environ.get("LOUCLOUD_LOG_FILE", "")
    # Uploads arrive in this staging folder; an uploaded image's own copy is kept in the
    # image store (hosts added later get it from there).
    UPLOAD_DIR = os.environ.get("LOUCLOUD_UPLOAD_DIR", str(INSTANCE_DIR / "uploads"))
    IMAGE_STORE = os.environ.get("LOUCLOUD_IMAGE_STORE", str(INSTANCE_DIR / "images"))
    UPLOAD_CHUNK_BYTES = 16 * 1024 * 1024   # one request of a chunked upload at most

    VERIFY_SECRET_KEY = False

    @staticmethod
    def init_secret(app):
        if not app.config.get("SECRET_KEY"):
            app.config["SECRET_KEY"] = _instance_secret_key()


class ProductionConfig(Config):
    """For Apache + mod_wsgi: secret key and database URL must come from the environment
    or the instance config file (instance/loucloud.cfg); the console proxy is reached
    through Apache on the same origin."""
    VERIFY_SECRET_KEY = True
    SESSION_COOKIE_SECURE = os.environ.get("LOUCLOUD_HTTPS", "1") == "1"
    CONSOLE_URL = os.environ.get("CONSOLE_URL", "/websockify")


class TestConfig(Config):
    TESTING = True
    SECRET_KEY = "test-secret-key-not-for-production"
    SQLALCHEMY_DATABASE_URI = "sqlite://"
    CACHE_TYPE = "SimpleCache"
    LIVE_STATE_CACHE_SECONDS = 0  # tests change hosts behind the app's back
    EVENT_STREAM_SECONDS = 0.3    # a stream a test reads ends by itself
    # Cheaper hashing keeps the suite fast; the strength test uses the real parameters.
    PASSWORD_TIME_COST = 1
    PASSWORD_MEMORY_KIB = 8192
    PASSWORD_PARALLELISM = 1
    SERVER_NAME = None
    TASK_BROKER = "memory"  # huey's in-process queue; tests run the tasks they queue


CONFIGS = {"default": Config, "production": ProductionConfig, "test": TestConfig}
