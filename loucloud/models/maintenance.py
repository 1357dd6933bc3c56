"""Host maintenance (issue 14): what a forgotten host kept, and the VMs lost with it. A
host removed from the pool while offline ("Forget") takes its VMs with it: each becomes
a LostVM (its owner sees it as lost, its quota is free) and their domains, volumes and
fixed addresses, still on the host, are remembered by the host's URI (Remnant), to
become leftovers of the host again (removed as soon as it answers) if it is ever added
back."""
from __future__ import annotations

from ..extensions import db
from . import utcnow


class Remnant(db.Model):
    __tablename__ = "remnants"

    id = db.Column(db.Integer, primary_key=True)
    uri = db.Column(db.String(255), nullable=False, index=True)   # the forgotten host's
    host_name = db.Column(db.String(64), nullable=False, default="")
    kind = db.Column(db.String(16), nullable=False)   # as Leftover: volume, domain, address
    pool = db.Column(db.String(64), nullable=False, default="")
    name = db.Column(db.String(255), nullable=False)
    vm_name = db.Column(db.String(64), nullable=False, default="")
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)

    def __repr__(self) -> str:
        return f"<Remnant {self.kind} {self.name} of {self.uri}>"


class LostVM(db.Model):
    """A VM whose host was forgotten (issue 14): what its owner knew of it, kept for
    them to see as lost until they delete the record. No VM any more: no host, nothing
    to act on, counted in no quota, its name free for a new VM. ``vm_id`` was its id
    (its page's old address leads here)."""
    __tablename__ = "lost_vms"

    id = db.Column(db.Integer, primary_key=True)
    owner_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"),
                         nullable=False, index=True)
    vm_id = db.Column(db.Integer, nullable=False, index=True)
    name = db.Column(db.String(64), nullable=False)
    host_name = db.Column(db.String(64), nullable=False, default="")
    template_name = db.Column(db.String(64), nullable=False, default="")
    image_name = db.Column(db.String(64), nullable=False, default="")
    vcpus = db.Column(db.Integer, nullable=False, default=0)
    memory_mib = db.Column(db.Integer, nullable=False, default=0)
    disk_gib = db.Column(db.Integer, nullable=False, default=0)   # every disk of it
    ip_address = db.Column(db.String(45))
    created_at = db.Column(db.DateTime, nullable=False)   # the VM's
    lost_at = db.Column(db.DateTime, nullable=False, default=utcnow)

    owner = db.relationship("User")

    def __repr__(self) -> str:
        return f"<LostVM {self.name} (was on {self.host_name})>"
