"""Host maintenance (issue 14): what a forgotten host kept. A host removed from the pool
while offline ("Forget") takes its VMs' records with it; their domains, volumes and
fixed addresses are still on it. They are remembered here by the host's URI, and become
leftovers of the host again (removed as soon as it answers) if it is ever added back."""
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
