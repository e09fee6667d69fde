"""``modelops tokens``: list, create and revoke API tokens (admin only)."""

from __future__ import annotations

from typing import Annotated

import typer

from modelops.cli.common import (
    JsonFlag,
    add_row,
    client,
    command,
    console,
    err_console,
    new_table,
    print_json,
    when,
)

app = typer.Typer(no_args_is_help=True)


@app.command("list")
@command
def list_tokens(json_output: JsonFlag = False) -> None:
    """List every token, active and revoked."""
    with client() as api:
        tokens = api.tokens.list()
    if json_output:
        print_json(tokens)
        return
    table = new_table("ID", "Name", "Role", "Created", "By", "Revoked")
    for token in tokens:
        add_row(table, token["id"], token["name"], token["role"], when(token["created_at"]),
                token["created_by"], when(token["revoked_at"]) or "-")
    console.print(table)


@app.command("create")
@command
def create_token(
    name: Annotated[str, typer.Argument(help="A name saying who or what uses the token.")],
    role: Annotated[str, typer.Option(help="viewer, member, approver or admin.")],
    json_output: JsonFlag = False,
) -> None:
    """Create a token; its secret is printed once and cannot be shown again."""
    with client() as api:
        token = api.tokens.create(name, role)
    if json_output:
        print_json(token)
        return
    err_console.print(
        f"Created token '{token['name']}' (id {token['id']}, role {token['role']}). "
        "Store the secret now: it is shown only once.", soft_wrap=True, highlight=False,
    )
    # The secret alone on stdout, so `SECRET=$(modelops tokens create …)` captures just it.
    console.print(token["secret"], highlight=False, markup=False)


@app.command("revoke")
@command
def revoke_token(
    token_id: Annotated[int, typer.Argument(metavar="ID", help="The token's id (see `tokens list`).")],
    json_output: JsonFlag = False,
) -> None:
    """Revoke a token: requests made with it are refused from now on."""
    with client() as api:
        token = api.tokens.revoke(token_id)
    if json_output:
        print_json(token)
        return
    console.print(f"Revoked token '{token['name']}' (id {token['id']}).", highlight=False,
                  markup=False)
