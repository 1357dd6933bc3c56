"""Images (disk files and install media on the hosts), their copies per host, and the
uploads that bring new ones in through LouCloud."""
from __future__ import annotations

from sqlalchemy import BigInteger

from ..extensions import db
from . import utcnow


class Image(db.Model):
    __tablename__ = "images"

    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(64), unique=True, nullable=False)
    path = db.Column(db.String(1024), nullable=False)
    os_type = db.Column(db.String(16), nullable=False, default="linux")
    format = db.Column(db.String(16), nullable=False)  # qcow2, raw or iso
    virtual_size = db.Column(BigInteger, nullable=False)
    # Takes first-boot data (cloud-init NoCloud), and for whom: the image's default user.
    cloud_init = db.Column(db.Boolean, nullable=False, default=False)
    login_user = db.Column(db.String(32), nullable=False, default="")
    firmware = db.Column(db.String(8), nullable=False, default="bios")  # or "uefi"
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    # Uploaded through LouCloud: the volume it has in LouCloud's pool on each host, the
    # file's size and SHA-256 (None for an image added by path).
    volume = db.Column(db.String(255))
    file_size = db.Column(BigInteger)
    sha256 = db.Column(db.String(64))

    locations = db.relationship("ImageLocation", back_populates="image",
                                cascade="all, delete-orphan")
    templates = db.relationship("Template", back_populates="image", lazy="dynamic")

    @property
    def is_iso(self) -> bool:
        return self.format == "iso"

    @property
    def uploaded(self) -> bool:
        return self.volume is not None

    def present_on(self, host_id: int) -> bool | None:
        for loc in self.locations:
            if loc.host_id == host_id:
                return loc.present
        return None

    def path_on(self, host_id: int) -> str:
        """The file's path on that host (an uploaded image's pool may lie elsewhere)."""
        for loc in self.locations:
            if loc.host_id == host_id and loc.path:
                return loc.path
        return self.path


class ImageLocation(db.Model):
    """Whether an image's file is usable on a host, and when that was checked; for an
    image LouCloud copies there, how far the copy is."""
    __tablename__ = "image_locations"

    image_id = db.Column(db.Integer, db.ForeignKey("images.id", ondelete="CASCADE"),
                         primary_key=True)
    host_id = db.Column(db.Integer, db.ForeignKey("hosts.id", ondelete="CASCADE"),
                          primary_key=True)
    present = db.Column(db.Boolean, nullable=False)
    checked_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    # A copy LouCloud writes: None (no copy: found by path), "copying", "failed" or
    # "done"; the bytes written, why it failed, and its path on that host.
    copy_state = db.Column(db.String(16))
    copied = db.Column(BigInteger, nullable=False, default=0)
    error = db.Column(db.String(500), nullable=False, default="")
    path = db.Column(db.String(1024))

    image = db.relationship("Image", back_populates="locations")
    host = db.relationship("Host")


class Upload(db.Model):
    """A file coming in through the browser or the CLI, in chunks, to the staging area.
    Its offset is what the server has written; a client resumes from it."""
    __tablename__ = "uploads"

    id = db.Column(db.String(32), primary_key=True)  # random: the URL's secret part
    owner_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"),
                         nullable=False)
    name = db.Column(db.String(64), nullable=False)
    filename = db.Column(db.String(255), nullable=False)
    size = db.Column(BigInteger, nullable=False)
    received = db.Column(BigInteger, nullable=False, default=0)
    format = db.Column(db.String(16), nullable=False)  # chosen: qcow2, raw, iso or auto
    sha256 = db.Column(db.String(64))  # the administrator's, to compare
    os_type = db.Column(db.String(16), nullable=False, default="")
    cloud_init = db.Column(db.Boolean, nullable=False, default=False)
    login_user = db.Column(db.String(32), nullable=False, default="")
    firmware = db.Column(db.String(8), nullable=False, default="bios")
    host_ids = db.Column(db.String(500), nullable=False, default="")  # "" : every host
    state = db.Column(db.String(16), nullable=False, default="receiving")
    error = db.Column(db.String(500), nullable=False, default="")
    image_id = db.Column(db.Integer, db.ForeignKey("images.id", ondelete="SET NULL"))
    task_id = db.Column(db.Integer)  # the copy task that follows it as it arrives
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow)
