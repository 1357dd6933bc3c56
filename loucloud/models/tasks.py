"""Tasks: long work run by the worker (`manage.py worker`), as the pages see it."""
from __future__ import annotations

from ..extensions import db
from . import utcnow

TASK_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED = ("succeeded", "failed", "cancelled")


class Task(db.Model):
    __tablename__ = "tasks"

    id = db.Column(db.Integer, primary_key=True)
    owner_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    kind = db.Column(db.String(32), nullable=False)          # image.copy, ping, ...
    target_type = db.Column(db.String(16), nullable=False, default="")  # image, vm, host
    target_id = db.Column(db.Integer)
    target_name = db.Column(db.String(255), nullable=False, default="")
    args = db.Column(db.Text, nullable=False, default="{}")  # JSON
    state = db.Column(db.String(16), nullable=False, default="queued")
    progress = db.Column(db.Float, nullable=False, default=0.0)      # 0..1
    remaining_seconds = db.Column(db.Integer)
    message = db.Column(db.String(500), nullable=False, default="")
    result = db.Column(db.Text, nullable=False, default="")
    error = db.Column(db.String(1000), nullable=False, default="")
    attempts = db.Column(db.Integer, nullable=False, default=0)
    max_attempts = db.Column(db.Integer, nullable=False, default=3)
    timeout_seconds = db.Column(db.Integer, nullable=False, default=3600)
    cancel_requested = db.Column(db.Boolean, nullable=False, default=False)
    worker = db.Column(db.String(128), nullable=False, default="")
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    started_at = db.Column(db.DateTime)
    heartbeat_at = db.Column(db.DateTime)
    finished_at = db.Column(db.DateTime)
    retry_at = db.Column(db.DateTime)

    owner = db.relationship("User")

    __table_args__ = (db.Index("ix_tasks_state", "state", "id"),
                      db.Index("ix_tasks_target", "target_type", "target_id"),
                      db.Index("ix_tasks_owner", "owner_id", "id"))

    @property
    def finished(self) -> bool:
        return self.state in FINISHED
