from __future__ import annotations

from conftest import RunningServer


def test_server_answers_with_token_and_refuses_without(server: RunningServer) -> None:
    with server.client() as client:
        assert client.whoami() == {"name": "admin", "role": "admin"}
    import httpx

    response = httpx.get(server.url + "/api/v1/projects")
    assert response.status_code == 401
    assert "missing token" in response.json()["detail"]
