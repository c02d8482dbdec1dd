"""Typed errors that services raise, each with a message written for a person.

The REST API maps them to HTTP statuses with a `{"code", "detail"}` body and the
websockets send them as `error` events; both read `code`, `status` and `detail`
from here, so a rule's error reads the same everywhere.
"""


class ServiceError(Exception):
    """A business rule said no. Subclasses set `status` and `code`."""

    status = 400
    code = "invalid"

    def __init__(self, detail: str, *, code: str | None = None, **extra):
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        # Figures that explain the refusal (counts, limits), sent beside the message.
        self.extra = extra

    def as_dict(self) -> dict:
        return {"code": self.code, "detail": self.detail, **self.extra}


class InvalidRequest(ServiceError):
    status = 400
    code = "invalid"


class NotAllowed(ServiceError):
    status = 403
    code = "not_allowed"


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"
