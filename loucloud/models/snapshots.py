"""Snapshots of a VM as LouCloud lists them: name, when, with the running machine or
of its disks only, and the space it took when known. libvirt's own list on the host is
the truth (services/vms/snapshots.py reconciles the two when a VM's page is shown)."""
from __future__ import annotations

from sqlalchemy import UniqueConstraint

from ..extensions import db
from . import utcnow


class Snapshot(db.Model):
    __tablename__ = "snapshots"
    __table_args__ = (UniqueConstraint("vm_id", "name", name="uq_snapshots_vm_name"),)

    id = db.Column(db.Integer, primary_key=True)
    vm_id = db.Column(db.Integer, db.ForeignKey("vms.id", ondelete="CASCADE"),
                      nullable=False, index=True)
    name = db.Column(db.String(64), nullable=False)
    memory = db.Column(db.Boolean, nullable=False, default=False)
    size_bytes = db.Column(db.BigInteger)   # what the disk grew by when taken (None: unknown)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)

    vm = db.relationship("VM", backref=db.backref(
        "snapshots", cascade="all, delete-orphan", passive_deletes=True,
        order_by="(Snapshot.created_at, Snapshot.id)"))

    def __repr__(self) -> str:
        return f"<Snapshot {self.name} of VM {self.vm_id}>"
