"""HTTP plumbing shared by the client's resource mixins."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx


class ApiError(Exception):
    """The server answered with an error; ``status`` and ``detail`` say what and why."""

    def __init__(self, status: int, detail: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.body = body or {}


def discover(url: str | None = None, token: str | None = None) -> tuple[str, str | None]:
    url = url or os.environ.get("MODELOPS_URL")
    token = token or os.environ.get("MODELOPS_TOKEN")
    if url and token:
        return url.rstrip("/"), token
    # Imported only when needed: pydantic-settings is most of every CLI call's start-up time.
    from modelops.settings import Settings

    settings = Settings()
    if not url:
        try:
            url = json.loads(settings.server_file.read_text())["url"]
        except (OSError, ValueError, KeyError):
            url = f"http://{settings.host}:{settings.port}"
    if not token:
        try:
            token = Path(settings.admin_token_file).read_text().strip() or None
        except OSError:
            token = None
    return url.rstrip("/"), token


class ClientBase:
    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 60.0) -> None:
        self.url, self.token = discover(url, token)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self.http = httpx.Client(base_url=self.url + "/api/v1", headers=headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def check(response: httpx.Response) -> httpx.Response:
        if response.is_success:
            return response
        try:
            body = response.json()
            detail = body.get("detail") if isinstance(body, dict) else str(body)
        except ValueError:
            body, detail = None, response.text or response.reason_phrase
        raise ApiError(response.status_code, str(detail), body if isinstance(body, dict) else None)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise ApiError(0, f"cannot reach the modelops server at {self.url}: is it running?") from exc
        self.check(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()
