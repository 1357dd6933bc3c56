"""Batches: many VMs made in one action (one per user of a group or a list, or N each),
and what became of each."""
from __future__ import annotations

import json

from ..extensions import db
from . import utcnow


class Batch(db.Model):
    __tablename__ = "batches"

    id = db.Column(db.Integer, primary_key=True)
    pattern = db.Column(db.String(64), nullable=False)       # e.g. "lab1-{username}"
    template_id = db.Column(db.Integer, db.ForeignKey("templates.id", ondelete="SET NULL"))
    template_name = db.Column(db.String(64), nullable=False, default="")
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    # The group it was made for (its manager may act on it), None: a list of users.
    group_id = db.Column(db.Integer, db.ForeignKey("groups.id", ondelete="SET NULL"),
                         index=True)
    per_user = db.Column(db.Integer, nullable=False, default=1)
    expires_at = db.Column(db.DateTime)   # the VMs' shut off and marked expired then
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    task_id = db.Column(db.Integer, db.ForeignKey("tasks.id", ondelete="SET NULL"))
    # What was asked ([[user id, username, VM name], ...]) and what could not be made
    # ([[username, VM name, reason], ...]), as JSON.
    planned = db.Column(db.Text, nullable=False, default="[]")
    failures = db.Column(db.Text, nullable=False, default="[]")

    created_by = db.relationship("User")
    group = db.relationship("Group")
    template = db.relationship("Template")
    task = db.relationship("Task", foreign_keys=[task_id])
    vms = db.relationship("VM", back_populates="batch", lazy="dynamic")

    @property
    def planned_items(self) -> list[list]:
        return json.loads(self.planned or "[]")

    @property
    def failure_items(self) -> list[list]:
        return json.loads(self.failures or "[]")
