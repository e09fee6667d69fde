from __future__ import annotations

from fastapi import APIRouter

from modelops.api.deps import ContainerDep, PrincipalDep
from modelops.api.schemas import ListOf, TokenCreate, TokenCreated, TokenRead, WhoAmI

router = APIRouter(tags=["tokens"])


@router.get("/whoami", response_model=WhoAmI)
def whoami(principal: PrincipalDep) -> WhoAmI:
    return WhoAmI(name=principal.name, role=principal.role.value)


@router.get("/tokens", response_model=ListOf[TokenRead])
def list_tokens(container: ContainerDep, principal: PrincipalDep) -> ListOf[TokenRead]:
    tokens = container.auth.list_tokens(principal=principal)
    return ListOf(data=[TokenRead.model_validate(t) for t in tokens], count=len(tokens))


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_token(body: TokenCreate, container: ContainerDep, principal: PrincipalDep) -> TokenCreated:
    token, secret = container.auth.create_token(principal=principal, name=body.name, role=body.role)
    return TokenCreated(**TokenRead.model_validate(token).model_dump(), secret=secret)


@router.delete("/tokens/{token_id}", response_model=TokenRead)
def revoke_token(token_id: int, container: ContainerDep, principal: PrincipalDep) -> TokenRead:
    return TokenRead.model_validate(container.auth.revoke_token(principal=principal, token_id=token_id))
