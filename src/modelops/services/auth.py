"""Tokens: the first-start admin token, authentication, and token management."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from modelops.domain.entities import ApiToken, Principal
from modelops.domain.errors import InvalidInput, Unauthenticated
from modelops.domain.names import validate_name
from modelops.domain.roles import Role, require_role
from modelops.ports import UnitOfWorkFactory

TOKEN_PREFIX = "mo_"


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def write_secret_file(path: Path, content: str) -> None:
    """Write a file readable by its owner only (0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class AuthService:
    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self.uow = uow

    def ensure_admin_token(self, *, token_file: Path) -> str | None:
        """On first start (no token at all) make an admin token and store it in ``token_file``.

        Returns the new secret, or None when tokens already exist."""
        secret = new_secret()
        with self.uow() as uow:
            if uow.tokens.count() > 0:
                return None
            # The file is written before the row commits: a crash between the two leaves an
            # unusable file that the next start overwrites, never a token nobody can read.
            write_secret_file(token_file, secret)
            uow.tokens.add(name="admin", role=Role.ADMIN, token_hash=hash_token(secret), actor="system")
        return secret

    def authenticate(self, raw: str | None) -> Principal:
        if not raw:
            raise Unauthenticated("missing token: send 'Authorization: Bearer <token>'")
        with self.uow() as uow:
            token = uow.tokens.find_by_hash(hash_token(raw.strip()))
        if token is None:
            raise Unauthenticated("unknown token")
        if not token.active:
            raise Unauthenticated(f"token '{token.name}' was revoked")
        return Principal(token_id=token.id, name=token.name, role=token.role)

    def create_token(self, *, principal: Principal, name: str, role: str) -> tuple[ApiToken, str]:
        require_role(principal.role, Role.ADMIN)
        validate_name("token", name)
        try:
            parsed = Role(role)
        except ValueError as exc:
            raise InvalidInput(
                f"unknown role {role!r}: choose one of {', '.join(r.value for r in Role)}"
            ) from exc
        secret = new_secret()
        with self.uow() as uow:
            token = uow.tokens.add(name=name, role=parsed, token_hash=hash_token(secret), actor=principal.name)
        return token, secret

    def list_tokens(self, *, principal: Principal) -> list[ApiToken]:
        require_role(principal.role, Role.ADMIN)
        with self.uow() as uow:
            return uow.tokens.list()

    def revoke_token(self, *, principal: Principal, token_id: int) -> ApiToken:
        require_role(principal.role, Role.ADMIN)
        with self.uow() as uow:
            return uow.tokens.revoke(token_id)
