"""Database models. Times are stored as naive UTC (MySQL DATETIME has no zone)."""
from __future__ import annotations

from datetime import datetime, timezone

from flask_login import UserMixin
from sqlalchemy import BigInteger, UniqueConstraint

from ..extensions import db

# The largest integer a column (SQLite INTEGER, MariaDB BIGINT) holds; a larger id or
# offset cannot even be bound to a query (OverflowError).
INT64_MAX = 2 ** 63 - 1


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(64), unique=True, nullable=False)
    full_name = db.Column(db.String(120), nullable=False, default="")
    email = db.Column(db.String(254))
    password_hash = db.Column(db.String(255), nullable=False)
    is_admin = db.Column(db.Boolean, nullable=False, default=False)
    active = db.Column(db.Boolean, nullable=False, default=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    last_login_at = db.Column(db.DateTime)
    max_vms = db.Column(db.Integer, nullable=False)
    max_vcpus = db.Column(db.Integer, nullable=False)
    max_memory_mib = db.Column(db.Integer, nullable=False)
    max_disk_gib = db.Column(db.Integer, nullable=False)
    # Bumped at the start of a quota reservation: the UPDATE takes the row's write lock
    # (InnoDB) or the database's (SQLite), so reservations of one user are serialised.
    quota_lock = db.Column(db.Integer, nullable=False, default=0)

    vms = db.relationship("VM", back_populates="owner", lazy="dynamic")

    # Flask-Login keeps the id of the *session* in the cookie, not the user's id: a session
    # can then be ended on the server (logout, password change, disable) and a replayed
    # cookie finds nothing. See services.auth.
    login_session_key = None  # set per request by services.auth (not a column)

    @property
    def is_active(self) -> bool:
        return bool(self.active)

    def get_id(self) -> str:
        if not self.login_session_key:
            raise RuntimeError("user has no login session")
        return self.login_session_key

    @property
    def role(self) -> str:
        return "admin" if self.is_admin else "user"

    @property
    def display_name(self) -> str:
        return self.full_name or self.username

    def __repr__(self) -> str:
        return f"<User {self.username}>"


class UserSession(db.Model):
    __tablename__ = "user_sessions"

    id = db.Column(db.Integer, primary_key=True)
    key_hash = db.Column(db.String(64), unique=True, nullable=False)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"),
                        nullable=False, index=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    last_seen_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    address = db.Column(db.String(45))
    user_agent = db.Column(db.String(255))

    user = db.relationship("User")


class LoginAttempt(db.Model):
    __tablename__ = "login_attempts"

    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(64), nullable=False, index=True)
    address = db.Column(db.String(45), nullable=False, index=True)
    at = db.Column(db.DateTime, nullable=False, default=utcnow, index=True)
    success = db.Column(db.Boolean, nullable=False, default=False)


class Setting(db.Model):
    __tablename__ = "settings"

    key = db.Column(db.String(64), primary_key=True)
    value = db.Column(db.Text, nullable=False)


class Host(db.Model):
    """A hypervisor host, reached through one libvirt URI."""
    __tablename__ = "hosts"

    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(64), unique=True, nullable=False)
    uri = db.Column(db.String(255), unique=True, nullable=False)
    hostname = db.Column(db.String(255), nullable=False, default="")
    arch = db.Column(db.String(32), nullable=False, default="")
    cpus = db.Column(db.Integer, nullable=False, default=0)
    memory_mib = db.Column(db.Integer, nullable=False, default=0)
    hypervisor = db.Column(db.String(32), nullable=False, default="")
    hypervisor_version = db.Column(db.String(32), nullable=False, default="")
    libvirt_version = db.Column(db.String(32), nullable=False, default="")
    accepts_vms = db.Column(db.Boolean, nullable=False, default=True)
    # Where the other hosts reach it for migrations (QEMU's migration and NBD streams;
    # None: the host part of its URI), and whether it is being emptied (issue 14).
    migration_address = db.Column(db.String(255))
    draining = db.Column(db.Boolean, nullable=False, default=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    offline_since = db.Column(db.DateTime)
    last_error = db.Column(db.String(500))

    vms = db.relationship("VM", back_populates="host", lazy="dynamic")

    @property
    def is_demo(self) -> bool:
        """The libvirt test driver: a simulated host, nothing really runs."""
        return self.uri.startswith("test:")

    def __repr__(self) -> str:
        return f"<Host {self.name}>"


class Template(db.Model):
    __tablename__ = "templates"

    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(64), unique=True, nullable=False)
    vcpus = db.Column(db.Integer, nullable=False)
    memory_mib = db.Column(db.Integer, nullable=False)
    disk_gib = db.Column(db.Integer, nullable=False)
    image_id = db.Column(db.Integer, db.ForeignKey("images.id"), nullable=False)
    notes = db.Column(db.Text, nullable=False, default="")
    # Where its VMs' NIC goes: a libvirt network by name (None: Settings' network) or a
    # host bridge.
    nic_kind = db.Column(db.String(16), nullable=False, default="network")
    network = db.Column(db.String(64))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)

    image = db.relationship("Image", back_populates="templates")
    vms = db.relationship("VM", back_populates="template", lazy="dynamic")
    boot_jobs = db.relationship("BootJob", secondary="template_boot_jobs",
                                back_populates="templates", order_by="BootJob.name")


class VM(db.Model):
    __tablename__ = "vms"
    __table_args__ = (
        UniqueConstraint("owner_id", "name", name="uq_vms_owner_name"),
        UniqueConstraint("host_id", "domain_name", name="uq_vms_host_domain"),
        # The list's order, and a state filter in that order: a page of 50 is read from
        # the index, whatever the number of VMs (no sort of every row).
        db.Index("ix_vms_name_id", "name", "id"),
        db.Index("ix_vms_live_state_name", "live_state", "name", "id", "status", "host_id"),
    )

    # Lifecycle of the record (libvirt's state of the domain is read live, not stored).
    CREATING, READY, DELETING, ERROR = "creating", "ready", "deleting", "error"
    MIGRATING = "migrating"   # moved to another host by a task (vms/moving.py)

    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(64), nullable=False)
    owner_id = db.Column(db.Integer, db.ForeignKey("users.id"), nullable=False, index=True)
    host_id = db.Column(db.Integer, db.ForeignKey("hosts.id"), nullable=False, index=True)
    template_id = db.Column(db.Integer, db.ForeignKey("templates.id"), nullable=False)
    image_id = db.Column(db.Integer, db.ForeignKey("images.id"), nullable=False)
    domain_name = db.Column(db.String(64), nullable=False)
    uuid = db.Column(db.String(36), unique=True, nullable=False)
    vcpus = db.Column(db.Integer, nullable=False)
    memory_mib = db.Column(db.Integer, nullable=False)
    # How far a running VM can grow without a restart (fixed at create; None: not at all).
    max_vcpus = db.Column(db.Integer)
    max_memory_mib = db.Column(db.Integer)
    disk_gib = db.Column(db.Integer, nullable=False)   # its system disk's size
    volume_name = db.Column(db.String(255), nullable=False, default="")
    volume_path = db.Column(db.String(1024), nullable=False, default="")
    mac = db.Column(db.String(17))
    # Where the NIC went ("network", "bridge", "user"; None: no NIC, nic_note says why),
    # and the fixed address reserved for it on a LouCloud network.
    nic_kind = db.Column(db.String(16))
    network = db.Column(db.String(64))
    nic_note = db.Column(db.String(255))
    ip_address = db.Column(db.String(45))
    seed_volume = db.Column(db.String(255))   # the cloud-init seed ISO in the host's pool
    boot_job_names = db.Column(db.Text, nullable=False, default="")  # given at create
    # What the guest agent last said of its addresses (JSON list), by the sampler; what
    # the DHCP leases say of its MAC (JSON list), by the watcher.
    guest_addresses = db.Column(db.Text)
    guest_addresses_at = db.Column(db.DateTime)
    lease_addresses = db.Column(db.Text)
    # Its live state as the watcher keeps it (libvirt's events and syncs): the state
    # and why, since when, when it was last confirmed, the last event; live_changed_at
    # orders the changes pages follow.
    live_state = db.Column(db.String(16))
    live_reason = db.Column(db.String(32))
    live_since = db.Column(db.DateTime)
    live_at = db.Column(db.DateTime)
    live_event = db.Column(db.String(16))
    live_changed_at = db.Column(db.DateTime, index=True)
    status = db.Column(db.String(16), nullable=False, default=CREATING)
    status_since = db.Column(db.DateTime, nullable=False, default=utcnow)
    last_error = db.Column(db.String(500))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    started_at = db.Column(db.DateTime)  # when LouCloud last started it (for uptime)

    owner = db.relationship("User", back_populates="vms")
    host = db.relationship("Host", back_populates="vms")
    template = db.relationship("Template", back_populates="vms")
    # The install medium in its CD-ROM drive (an ISO image), None when empty.
    cdrom_image_id = db.Column(db.Integer, db.ForeignKey("images.id", ondelete="SET NULL"))

    image = db.relationship("Image", foreign_keys=[image_id])
    cdrom_image = db.relationship("Image", foreign_keys=[cdrom_image_id])
    # Every disk, the system disk first (models/disks.py).
    disks = db.relationship("Disk", back_populates="vm", cascade="all, delete-orphan",
                            passive_deletes=True, order_by="(Disk.system.desc(), Disk.target)")

    @property
    def volume_names(self) -> list[str]:
        """Every volume the VM has in LouCloud's pool on its host: its disks' (the
        system disk first) and its first-boot seed's."""
        return list(dict.fromkeys([d.volume_name for d in self.disks]
                                  + [n for n in (self.volume_name, self.seed_volume) if n]))

    def __repr__(self) -> str:
        return f"<VM {self.name} ({self.domain_name})>"


class ConsoleToken(db.Model):
    """A one-time permission to open one VM's screen. Only the SHA-256 of the token is
    kept; the token itself goes to the browser once."""
    __tablename__ = "console_tokens"

    id = db.Column(db.Integer, primary_key=True)
    token_hash = db.Column(db.String(64), unique=True, nullable=False)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"),
                        nullable=False, index=True)
    vm_id = db.Column(db.Integer, db.ForeignKey("vms.id", ondelete="CASCADE"),
                      nullable=False, index=True)
    kind = db.Column(db.String(8), nullable=False, default="vnc")  # or "serial"
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    expires_at = db.Column(db.DateTime, nullable=False)
    used_at = db.Column(db.DateTime)


class AuditEvent(db.Model):
    """One state change (or attempt): who, what, on what, when, how it ended, from where.
    Never a password or a token: only names, ids and the message the user was shown."""
    __tablename__ = "audit_events"

    id = db.Column(db.Integer, primary_key=True)
    at = db.Column(db.DateTime, nullable=False, default=utcnow, index=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    username = db.Column(db.String(64), nullable=False, default="")
    action = db.Column(db.String(64), nullable=False, index=True)
    target = db.Column(db.String(128), nullable=False, default="")
    result = db.Column(db.String(16), nullable=False, index=True)  # ok, refused, failed
    message = db.Column(db.String(500), nullable=False, default="")
    address = db.Column(db.String(45), nullable=False, default="")


class Leftover(db.Model):
    """Something a failed create could not remove from a host (it was unreachable):
    removed when the host answers again."""
    __tablename__ = "leftovers"

    VOLUME, DOMAIN, ADDRESS = "volume", "domain", "address"  # address: name "MAC IP", pool: network

    id = db.Column(db.Integer, primary_key=True)
    host_id = db.Column(db.Integer, db.ForeignKey("hosts.id", ondelete="CASCADE"),
                          nullable=False, index=True)
    kind = db.Column(db.String(16), nullable=False)
    pool = db.Column(db.String(64), nullable=False, default="")
    name = db.Column(db.String(255), nullable=False)  # volume name, or domain UUID
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    last_error = db.Column(db.String(500), nullable=False, default="")

    host = db.relationship("Host")


class HostSample(db.Model):
    """What the sampler saw of a host at one moment."""
    __tablename__ = "host_samples"
    __table_args__ = (db.Index("ix_host_samples_host_at", "host_id", "at"),)

    id = db.Column(db.Integer, primary_key=True)
    host_id = db.Column(db.Integer, db.ForeignKey("hosts.id", ondelete="CASCADE"),
                          nullable=False)
    at = db.Column(db.DateTime, nullable=False, index=True)
    # 0: kept for a short while; 1: also one per 5 minutes; 2: also one per 30 minutes.
    level = db.Column(db.SmallInteger, nullable=False, default=0)
    online = db.Column(db.Boolean, nullable=False)
    cpu_percent = db.Column(db.Float)
    memory_used_mib = db.Column(db.Integer)
    memory_total_mib = db.Column(db.Integer)
    domains_running = db.Column(db.Integer)
    vms = db.Column(db.Integer)
    pool_capacity_gib = db.Column(db.Float)
    pool_used_gib = db.Column(db.Float)


class VMSample(db.Model):
    """What the sampler saw of a running (or paused) VM at one moment. Rates are per
    second since the previous sample; None where there was none to compare with."""
    __tablename__ = "vm_samples"
    __table_args__ = (db.Index("ix_vm_samples_vm_at", "vm_id", "at"),)

    id = db.Column(db.Integer, primary_key=True)
    vm_id = db.Column(db.Integer, db.ForeignKey("vms.id", ondelete="CASCADE"), nullable=False)
    at = db.Column(db.DateTime, nullable=False, index=True)
    level = db.Column(db.SmallInteger, nullable=False, default=0)
    state = db.Column(db.String(16), nullable=False)
    cpu_percent = db.Column(db.Float)
    memory_used_mib = db.Column(db.Float)
    disk_read_bps = db.Column(db.Float)
    disk_write_bps = db.Column(db.Float)
    net_rx_bps = db.Column(db.Float)
    net_tx_bps = db.Column(db.Float)


class SshKey(db.Model):
    """An SSH public key of a user, put into the VMs he creates (cloud-init)."""
    __tablename__ = "ssh_keys"
    __table_args__ = (UniqueConstraint("user_id", "fingerprint", name="uq_ssh_keys_user_fp"),)

    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"),
                        nullable=False, index=True)
    name = db.Column(db.String(64), nullable=False)
    key = db.Column(db.Text, nullable=False)          # "type base64 [comment]", checked
    fingerprint = db.Column(db.String(64), nullable=False)  # SHA256:... as ssh-keygen
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


template_boot_jobs = db.Table(
    "template_boot_jobs",
    db.Column("template_id", db.Integer, db.ForeignKey("templates.id", ondelete="CASCADE"),
              primary_key=True),
    db.Column("boot_job_id", db.Integer, db.ForeignKey("boot_jobs.id", ondelete="CASCADE"),
              primary_key=True))


class BootJob(db.Model):
    """A named first-boot script (cloud-init runcmd / write_files / packages), kept by
    the administrator; defaults go to every VM of an image that takes cloud-init."""
    __tablename__ = "boot_jobs"

    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(64), unique=True, nullable=False)
    description = db.Column(db.String(255), nullable=False, default="")
    script = db.Column(db.Text, nullable=False)      # YAML, checked on save
    is_default = db.Column(db.Boolean, nullable=False, default=False)
    user_choice = db.Column(db.Boolean, nullable=False, default=False)  # users may add it
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)

    templates = db.relationship("Template", secondary="template_boot_jobs",
                                back_populates="boot_jobs", order_by="Template.name")


class WorkerLease(db.Model):
    """One LouCloud worker (the watcher, the sampler) across every LouCloud server: the
    process that holds the lease does the work and beats; another takes over when the
    lease runs out. beat_at also tells pages whether the watcher's states are fresh."""
    __tablename__ = "worker_leases"

    name = db.Column(db.String(32), primary_key=True)
    holder = db.Column(db.String(128), nullable=False)
    beat_at = db.Column(db.DateTime, nullable=False)
    expires_at = db.Column(db.DateTime, nullable=False)


# Split by concern; imported here so that `from loucloud.models import X` keeps working.
from .images import Image, ImageLocation, Upload  # noqa: E402,F401
from .tasks import Task  # noqa: E402,F401
from .disks import Disk  # noqa: E402,F401
from .snapshots import Snapshot  # noqa: E402,F401
from .maintenance import LostVM, Remnant  # noqa: E402,F401
from .tokens import ApiToken  # noqa: E402,F401
