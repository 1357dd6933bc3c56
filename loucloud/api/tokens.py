"""/api/v1/tokens: the caller's own personal API tokens (the Profile page's list)."""
from __future__ import annotations

import marshmallow as ma
from flask import url_for
from flask_login import current_user

from ..services import tokens as token_service
from .common import Bool, Int, UtcDateTime, blueprint

blp = blueprint("tokens", "The caller's personal API tokens.")
URL = "/tokens"


class TokenSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    prefix = ma.fields.String(required=True, metadata={
        "description": "The token's first characters, to tell tokens apart"})
    read_only = ma.fields.Boolean(required=True)
    state = ma.fields.Method("_state", required=True, metadata={
        "description": "active, expired or revoked"})
    created_at = UtcDateTime(required=True)
    expires_at = UtcDateTime(allow_none=True)
    revoked_at = UtcDateTime(allow_none=True)
    last_used_at = UtcDateTime(allow_none=True)
    last_used_from = ma.fields.String(allow_none=True)

    def _state(self, token) -> str:
        return token.state()


class TokenListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(TokenSchema), required=True)


class TokenCreateSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(1, 64))
    read_only = Bool(load_default=False)
    expires_days = Int(load_default=None, allow_none=True,
                       validate=ma.validate.Range(1, token_service.MAX_DAYS))


class NewTokenSchema(TokenSchema):
    secret = ma.fields.String(required=True, metadata={
        "description": "The token itself: shown only in this answer, never again"})


@blp.route("")
@blp.response(200, TokenListSchema)
def list_tokens():
    """The caller's tokens, newest first (revoked and expired ones too)."""
    return {"items": token_service.tokens_of(current_user)}


@blp.route("", methods=["POST"])
@blp.arguments(TokenCreateSchema)
@blp.response(201, NewTokenSchema)
def create_token(data):
    """A new token of the caller's (read-only if asked); its secret is in this answer
    only."""
    new = token_service.create_token(current_user, data["name"], read_only=data["read_only"],
                                     expires_days=data["expires_days"])
    new.token.secret = new.secret     # for this answer only: no column holds it
    return new.token, 201, {
        "Location": url_for("api_tokens.get_token", token_id=new.token.id)}


@blp.route("/<int:token_id>")
@blp.response(200, TokenSchema)
def get_token(token_id: int):
    return token_service.token_for(current_user, token_id)


@blp.route("/<int:token_id>", methods=["DELETE"])
@blp.response(200, TokenSchema)
def revoke_token(token_id: int):
    """Revoke the token: it stops working at once (the record stays, marked revoked)."""
    return token_service.revoke_token(current_user, token_id)
