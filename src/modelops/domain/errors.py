"""Errors the domain and services raise; the API maps each to one HTTP status."""

from __future__ import annotations


class ModelOpsError(Exception):
    """Base of every error a user can cause; the message is shown to them as is."""


class InvalidInput(ModelOpsError):
    """The request is malformed or breaks a rule (400)."""


class InvalidArchive(InvalidInput):
    """An uploaded archive is malformed, unsafe or over a limit (400)."""


class PayloadTooLarge(InvalidInput):
    """An upload or archive exceeds a configured size limit (413)."""


class NotFound(ModelOpsError):
    """The named thing does not exist (404)."""


class AlreadyExists(ModelOpsError):
    """A unique name is taken (409)."""


class Conflict(ModelOpsError):
    """The current state forbids the action, e.g. deleting a non-empty project (409)."""


class InvalidTransition(Conflict):
    """A status change that the transition table does not allow (409)."""

    def __init__(self, *, entity: str, current: str, requested: str, allowed: list[str]) -> None:
        self.entity = entity
        self.current = current
        self.requested = requested
        self.allowed = allowed
        allowed_text = ", ".join(allowed) if allowed else "none (terminal)"
        super().__init__(
            f"{entity} is '{current}'; cannot move to '{requested}'. "
            f"Allowed from '{current}': {allowed_text}"
        )


class Unauthenticated(ModelOpsError):
    """No token, or an unknown or revoked one (401)."""


class PermissionDenied(ModelOpsError):
    """The token's role is below what the action needs (403)."""
