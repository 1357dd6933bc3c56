"""The work of LouCloud: each function orders database and hypervisor calls for one user
action, owns its transaction and undoes what it did on a host when a later step fails."""


class ServiceError(Exception):
    """An action was refused or failed; ``str(e)`` is the message shown to the user."""

    status = 400


class FieldError(ServiceError):
    """Bad input; ``field`` names the form field it belongs to (None: the whole form)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class NotAllowed(ServiceError):
    status = 403


class Conflict(ServiceError):
    """The action does not fit the current state (HTTP 409)."""

    status = 409


class Unavailable(ServiceError):
    """A host (or the database) cannot do it now (HTTP 503)."""

    status = 503
