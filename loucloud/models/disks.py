"""A VM's disks: every volume it has in LouCloud's pool on its host, the system disk
(the overlay on its image, or the blank disk of an install) included. Quota counts the
sizes of every disk of a user's VMs, attached or not."""
from __future__ import annotations

from sqlalchemy import UniqueConstraint

from ..extensions import db
from . import utcnow


class Disk(db.Model):
    __tablename__ = "disks"
    __table_args__ = (UniqueConstraint("vm_id", "volume_name", name="uq_disks_vm_volume"),)

    id = db.Column(db.Integer, primary_key=True)
    vm_id = db.Column(db.Integer, db.ForeignKey("vms.id", ondelete="CASCADE"),
                      nullable=False, index=True)
    # The guest's device name (vda for the system disk, vdb, vdc ... for data disks).
    target = db.Column(db.String(8), nullable=False)
    volume_name = db.Column(db.String(255), nullable=False)
    volume_path = db.Column(db.String(1024), nullable=False, default="")
    size_gib = db.Column(db.Integer, nullable=False)
    system = db.Column(db.Boolean, nullable=False, default=False)
    attached = db.Column(db.Boolean, nullable=False, default=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)

    vm = db.relationship("VM", back_populates="disks")

    def __repr__(self) -> str:
        return f"<Disk {self.target} {self.volume_name} {self.size_gib} GiB>"
