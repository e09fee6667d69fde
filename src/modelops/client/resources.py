"""Client methods for the foundation resources: tokens, projects, datasets, ML packages."""

from __future__ import annotations

from typing import Any

from modelops.client.base import ClientBase


class FoundationApi(ClientBase):
    def whoami(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/whoami")
        return result
