"""Personal API tokens: shown once, kept only as a hash."""
from __future__ import annotations

from ..extensions import db
from . import utcnow


class ApiToken(db.Model):
    __tablename__ = "api_tokens"

    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"),
                        nullable=False, index=True)
    name = db.Column(db.String(64), nullable=False)
    # The first characters of the secret, to tell one's tokens apart (never enough to use).
    prefix = db.Column(db.String(16), nullable=False)
    key_hash = db.Column(db.String(64), unique=True, nullable=False)
    read_only = db.Column(db.Boolean, nullable=False, default=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    expires_at = db.Column(db.DateTime)
    revoked_at = db.Column(db.DateTime)
    last_used_at = db.Column(db.DateTime)
    last_used_from = db.Column(db.String(45))

    user = db.relationship("User")

    def state(self, now=None) -> str:
        """'active', 'expired' or 'revoked'."""
        now = now or utcnow()
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"
