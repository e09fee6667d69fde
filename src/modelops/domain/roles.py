"""Roles are ordered: each one can do everything the ones below it can."""

from __future__ import annotations

from enum import StrEnum

from modelops.domain.errors import PermissionDenied


class Role(StrEnum):
    VIEWER = "viewer"
    MEMBER = "member"
    APPROVER = "approver"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANKS = {Role.VIEWER: 0, Role.MEMBER: 1, Role.APPROVER: 2, Role.ADMIN: 3}


def require_role(have: Role, needed: Role) -> None:
    if not have.allows(needed):
        raise PermissionDenied(f"this action needs the '{needed}' role; your token is '{have}'")
