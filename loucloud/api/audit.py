"""/api/v1/audit-events (the administrator's): the audit log, newest first, filtered as
the Audit page filters (loucloud/audit/routes.py). Every write through the API leaves
its event there too."""
from __future__ import annotations

import marshmallow as ma
from flask_babel import lazy_gettext as _l

from ..services import audit as audit_service
from .common import PageArgs, UtcDateTime, admin_only, blueprint, page_of, page_schema

blp = blueprint("audit", "The audit log (the administrator's).")
URL = "/audit-events"
blp.before_request(admin_only(_l("Only the administrator reads the audit log.")))


class AuditEventSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    at = UtcDateTime(required=True)
    user_id = ma.fields.Integer(required=True, allow_none=True)
    username = ma.fields.String(required=True, metadata={
        "description": "Who (kept when the user is deleted); empty: nobody logged in"})
    action = ma.fields.String(required=True, metadata={
        "description": "The route or command (api_vms.start, users.create...)"})
    target = ma.fields.String(required=True)
    result = ma.fields.String(required=True, validate=ma.validate.OneOf(
        [audit_service.OK, audit_service.REFUSED, audit_service.FAILED]))
    message = ma.fields.String(required=True, metadata={
        "description": "What the user was shown"})
    address = ma.fields.String(required=True)


AuditEventPageSchema = page_schema(AuditEventSchema, "AuditEventPage")


class AuditArgs(PageArgs):
    username = ma.fields.String(load_default="", validate=ma.validate.Length(max=64),
                                metadata={"description": "Exactly this user"})
    action = ma.fields.String(load_default="", validate=ma.validate.Length(max=64),
                              metadata={"description": "Actions starting so"})
    result = ma.fields.String(load_default="", validate=ma.validate.OneOf(
        ["", audit_service.OK, audit_service.REFUSED, audit_service.FAILED]))
    q = ma.fields.String(load_default="", validate=ma.validate.Length(max=100), metadata={
        "description": "Part of the target, the message or the address"})


@blp.route("")
@blp.arguments(AuditArgs, location="query")
@blp.response(200, AuditEventPageSchema)
def list_events(args):
    """The audit events, newest first, filtered as the Audit page filters."""
    page = audit_service.search(username=args["username"].strip(),
                                action=args["action"].strip(), result=args["result"],
                                q=args["q"].strip(), page=args["page"],
                                per_page=args["limit"])
    return page_of(list(page.items), page=page.page, pages=page.pages, limit=args["limit"],
                   total=page.total)
