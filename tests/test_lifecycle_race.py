"""50 concurrent approve and reject requests on one version, over real HTTP, on a server with
SQLite and on one with PostgreSQL: exactly one wins, 49 get 409, and one audit event is left."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import httpx
from conftest import RunningServer
from support.lifecycle import evaluated_on_server

REQUESTS = 50


def race(server: RunningServer, tmp_path: Path) -> None:
    with server.client() as client:
        version = evaluated_on_server(client, "race", tmp_path)
    base = f"{server.url}/api/v1/projects/race/packages/tiny/versions/{version}"
    start = threading.Barrier(REQUESTS)
    answers: list[tuple[str, int, dict[str, object]]] = []

    def decide(index: int) -> None:
        action = "approve" if index % 2 else "reject"
        with httpx.Client(headers={"Authorization": f"Bearer {server.token}"}, timeout=120) as http:
            start.wait()
            response = http.post(f"{base}/{action}", json={"reason": f"request {index}"})
        answers.append((action, response.status_code, response.json()))

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(REQUESTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Counter(status for _, status, _ in answers) == {201: 1, 409: REQUESTS - 1}
    (winner,) = [(action, body) for action, status, body in answers if status == 201]
    final = "approved" if winner[0] == "approve" else "rejected"
    allowed = ["deployed"] if final == "approved" else []
    for _, status, body in answers:
        if status == 409:  # each loser is told what the version is now and what it allows
            assert body["current"] == final and body["allowed"] == allowed, body
    with server.client() as client:
        assert client.packages.get_version("race", "tiny", version)["status"] == final
        decisions = client.audit.list("race", actions=["approve", "reject"])
        assert len(decisions) == 1 and decisions[0]["job_id"] == winner[1]["job"]["id"]  # type: ignore[index]
        jobs = client.jobs.list("race", kinds=["approval", "rejection"])
        assert [j["id"] for j in jobs] == [decisions[0]["job_id"]]


def test_one_decision_wins_on_sqlite(server: RunningServer, tmp_path: Path) -> None:
    race(server, tmp_path)


def test_one_decision_wins_on_postgresql(make_server: object, pg_schema_url: str, tmp_path: Path) -> None:
    running = make_server(MODELOPS_DATABASE_URL=pg_schema_url)  # type: ignore[operator]
    race(running, tmp_path)
