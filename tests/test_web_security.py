"""The dashboard's fences over real HTTP against a real server: sign-in and its cookie, CSRF on
every state-changing request, roles, revoked tokens ending sessions, escaping of user data,
the Content-Security-Policy, and stored files served so that they cannot run."""

from __future__ import annotations

import base64
import json
import re
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import RunningServer
from itsdangerous import URLSafeTimedSerializer
from support.browser import WebClient, signed_in
from support.servers import api, make_token, new_project, shared_server, unique

from modelops.client import ModelOpsClient
from modelops.web.headers import CONTENT_SECURITY_POLICY
from modelops.web.views import ROUTERS

SCRIPT = "<script>alert('x')</script>"
ESCAPED = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"

# A package whose run leaves hostile artifacts and a hostile log line, and scores 0.9.
PROBE_TRAIN = textwrap.dedent('''
    import os
    from pathlib import Path


    class Main:
        def __init__(self):
            self.ready = False

        def train(self, data_directory):
            out = Path(os.environ["artifacts_directory"])
            (out / "report.html").write_text("<script>document.title = 'owned'</script>")
            (out / "plot.svg").write_text(
                '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
            (out / "notes.txt").write_text("<b>bold</b><script>alert(1)</script>")
            print("<script>alert('log')</script>", flush=True)
            self.ready = True

        def evaluate(self, data_directory):
            return 0.9

        def save(self):
            Path("model.txt").write_text("1")
''')


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with shared_server(tmp_path_factory.mktemp("web-security")) as running:
        yield running


@pytest.fixture
def web(srv: RunningServer) -> Iterator[WebClient]:
    client = WebClient(srv.url)
    yield client
    client.close()


@pytest.fixture(scope="module")
def evaluated(srv: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A project holding 'probe' 1.1, made and evaluated by a full pipeline run (score 0.9)."""
    folder = tmp_path_factory.mktemp("probe")
    (folder / "train.py").write_text(PROBE_TRAIN)
    data = tmp_path_factory.mktemp("probe-data")
    (data / "rows.csv").write_text("a,b\n1,2\n")
    project = unique("sec")
    with ModelOpsClient(srv.url, srv.token) as client:
        client.projects.create(project)
        client.datasets.upload_version(project, "rows", data)
        client.packages.upload(project, "probe", folder)
        created = client.pipelines.create(
            project, "full-probe", type="full", package="probe", version="1.0", dataset="rows",
        )
        run = client.pipelines.wait_run(project, created["run"]["job_id"], timeout=240)
    assert run["status"] == "Successful", run
    assert run["new_version"] == "1.1"
    return {"project": project, "job_id": run["job_id"]}


# --------------------------------------------------------------------------- sign-in and session


def test_sign_in_sets_an_httponly_lax_cookie_holding_the_token_id_not_the_secret(
    srv: RunningServer, web: WebClient
) -> None:
    response = web.sign_in(srv.token)
    assert response.status_code == 303 and response.headers["location"] == "/ui/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("modelops_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    assert srv.token not in value
    key = (srv.home / "web-session.key").read_text().strip().encode()
    payload = URLSafeTimedSerializer(key, salt="modelops.web.session").loads(value)
    assert payload["t"] == 1  # the first-start admin token's id, nothing more
    assert set(payload) == {"c", "t", "f"} and srv.token not in json.dumps(payload)
    page = web.get("/ui/")
    assert page.status_code == 200 and "Sign out" in page.text and "admin" in page.text


def test_a_wrong_token_is_refused_and_opens_no_session(srv: RunningServer, web: WebClient) -> None:
    response = web.sign_in("mo_not-a-real-token")
    assert response.status_code == 401
    assert "Sign-in failed: unknown token" in response.text
    assert web.get("/ui/").status_code == 303


def test_pages_redirect_to_sign_in_and_json_answers_401_without_a_session(web: WebClient) -> None:
    page = web.get("/ui/projects/anything/jobs?kind=training")
    assert page.status_code == 303
    assert page.headers["location"] == "/ui/login?next=%2Fui%2Fprojects%2Fanything%2Fjobs%3Fkind%3Dtraining"
    data = web.get("/ui/api/projects/anything/jobs/1/logs")
    assert data.status_code == 401 and data.json() == {"detail": "sign in first"}


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/api/v1/tokens", "/ui\\@evil"])
def test_sign_in_never_redirects_to_another_site(srv: RunningServer, web: WebClient, target: str) -> None:
    web.get("/ui/login")
    response = web.post("/ui/login", {"token": srv.token, "next": target})
    assert response.status_code == 303 and response.headers["location"] == "/ui/"


def test_a_tampered_cookie_is_no_session(srv: RunningServer) -> None:
    client = signed_in(srv)
    value = client.http.cookies["modelops_session"]
    body, _, signature = value.partition(".")
    forged = base64.urlsafe_b64encode(json.dumps({"c": "x", "t": 1, "f": []}).encode()).decode().rstrip("=")
    client.http.cookies.set("modelops_session", forged + "." + signature)
    assert client.get("/ui/").status_code == 303
    client.close()


def test_revoking_the_token_ends_its_sessions(srv: RunningServer) -> None:
    secret = make_token(srv, "member")
    client = signed_in(srv, secret)
    assert client.get("/ui/").status_code == 200
    with api(srv) as admin:
        tokens = admin.get("/tokens").json()["data"]
        token_id = max(t["id"] for t in tokens if t["role"] == "member")  # the one just made
        assert admin.delete(f"/tokens/{token_id}").status_code == 200
    page = client.get("/ui/")
    assert page.status_code == 303 and page.headers["location"].startswith("/ui/login")
    login = client.get("/ui/login")
    assert "Your session ended: its token was revoked" in login.text
    client.close()


def test_sign_out_ends_the_session(srv: RunningServer) -> None:
    client = signed_in(srv)
    assert client.post("/ui/logout").status_code == 303
    assert client.get("/ui/").status_code == 303
    client.close()


# --------------------------------------------------------------------------- CSRF


def test_state_changes_need_the_sessions_csrf_token(srv: RunningServer) -> None:
    client = signed_in(srv)
    name = unique("csrf")
    missing = client.post("/ui/projects", {"name": name}, csrf="")
    assert missing.status_code == 403 and "CSRF" in missing.text
    wrong = client.post("/ui/projects", {"name": name}, csrf="x" * 43)
    assert wrong.status_code == 403
    other = signed_in(srv)  # a valid token, but of another session
    assert client.post("/ui/projects", {"name": name}, csrf=other.csrf).status_code == 403
    other.close()
    with api(srv) as admin:
        assert admin.get(f"/projects/{name}").status_code == 404  # nothing was created
    made = client.post("/ui/projects", {"name": name})
    assert made.status_code == 303 and made.headers["location"] == f"/ui/projects/{name}/jobs"
    client.close()


def test_fetches_carry_the_csrf_token_in_a_header(srv: RunningServer) -> None:
    client = signed_in(srv)
    with api(srv) as admin:
        project = new_project(admin, "hdr")
    url = f"/ui/api/projects/{project}/jobs/999999/stop"
    assert client.http.post(url).status_code == 403
    assert client.http.post(url, headers={"X-CSRF-Token": "nope"}).status_code == 403
    passed = client.http.post(url, headers={"X-CSRF-Token": client.csrf})
    assert passed.status_code == 404 and "job 999999 not found" in passed.json()["detail"]
    client.close()


def test_a_state_change_without_a_session_is_403_even_with_a_csrf_token(web: WebClient) -> None:
    web.get("/ui/login")  # an anonymous session: it has a CSRF token but no user
    response = web.post("/ui/projects", {"name": unique("anon")})
    assert response.status_code == 403 and "Sign in first" in response.text


def _post_routes() -> list[str]:
    paths = []
    for router in ROUTERS:
        for route in router.routes:
            if "POST" in getattr(route, "methods", set()) and route.path != "/login":
                path = re.sub(r"\{(\w+)(:path)?\}", lambda m: "1" if "id" in m.group(1) else "x", route.path)
                paths.append("/ui" + path)
    return paths


def test_every_state_changing_route_refuses_a_request_without_csrf(srv: RunningServer) -> None:
    client = signed_in(srv)
    paths = _post_routes()
    assert len(paths) >= 15  # the routes are found: the check below is not vacuous
    for path in paths:
        response = client.post(path, {"name": "x", "reason": "r"}, csrf="")
        assert response.status_code == 403, (path, response.status_code)
    # Sign-in itself needs the token too (a login form posted from elsewhere is refused).
    assert client.post("/ui/login", {"token": srv.token}, csrf="").status_code == 403
    client.close()


# --------------------------------------------------------------------------- roles


def test_a_viewer_sees_no_review_buttons_and_both_web_and_api_refuse_the_approval(
    srv: RunningServer, evaluated: dict[str, Any]
) -> None:
    project = evaluated["project"]
    page_path = f"/ui/projects/{project}/packages/probe/versions/1.1"
    viewer_secret = make_token(srv, "viewer")
    viewer = signed_in(srv, viewer_secret)
    page = viewer.get(page_path)
    assert page.status_code == 200 and "evaluated" in page.text
    assert "approve-button" not in page.text and "reject-button" not in page.text
    assert "approving or rejecting needs the approver role" in page.text
    refused = viewer.post(page_path + "/approve", {"reason": "looks fine"})
    assert refused.status_code == 403 and "needs the &#39;approver&#39; role" in refused.text
    with api(srv, viewer_secret) as client:
        by_api = client.post(f"/projects/{project}/packages/probe/versions/1.1/approve", json={"reason": "ok"})
    assert by_api.status_code == 403
    viewer.close()
    approver = signed_in(srv, make_token(srv, "approver"))
    assert "approve-button" in approver.get(page_path).text
    approver.close()


def test_a_member_cannot_reach_the_tokens_page(srv: RunningServer) -> None:
    member = signed_in(srv, make_token(srv, "member"))
    assert ">Tokens<" not in member.get("/ui/").text
    assert member.get("/ui/tokens").status_code == 403
    member.close()


# --------------------------------------------------------------------------- escaping and policy


def test_user_text_is_escaped_everywhere_it_is_shown(srv: RunningServer) -> None:
    client = signed_in(srv)
    name = unique("xss")
    assert client.post("/ui/projects", {"name": name, "description": SCRIPT}).status_code == 303
    for path in ("/ui/", f"/ui/projects/{name}/jobs"):
        page = client.get(path)
        assert ESCAPED in page.text and SCRIPT not in page.text, path
    # A name a user typed comes back in an error message: escaped there too.
    bad = client.post("/ui/projects", {"name": SCRIPT})
    assert bad.status_code == 400 and SCRIPT not in bad.text and "invalid project name" in bad.text
    client.close()


def _inline_code(html: str) -> list[str]:
    """Inline scripts, event-handler attributes and style attributes: the policy forbids all."""
    found = [m.group(0) for m in re.finditer(r"<script(?![^>]*\bsrc=)[^>]*>", html)]
    found += re.findall(r"\son[a-z]+\s*=", html)
    found += re.findall(r"\sstyle\s*=", html)
    return found


def test_every_page_carries_the_policy_and_has_no_inline_code(
    srv: RunningServer, evaluated: dict[str, Any]
) -> None:
    client = signed_in(srv)
    project, job_id = evaluated["project"], evaluated["job_id"]
    base = f"/ui/projects/{project}"
    pages = [
        "/ui/", "/ui/tokens", f"{base}/jobs", f"{base}/jobs/{job_id}", f"{base}/datasets",
        f"{base}/datasets/rows", f"{base}/datasets/rows/versions/1", f"{base}/packages",
        f"{base}/packages/probe", f"{base}/packages/probe/versions/1.1", f"{base}/pipelines",
        f"{base}/pipelines/new", f"{base}/pipelines/full-probe", f"{base}/runs/{job_id}",
        f"{base}/runs/{job_id}/view/artifacts/notes.txt", f"{base}/deployments", f"{base}/audit",
    ]
    for path in pages:
        page = client.get(path)
        assert page.status_code == 200, (path, page.text[:500])
        assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"
        assert _inline_code(page.text) == [], path
    assert "&lt;b&gt;bold&lt;/b&gt;&lt;script&gt;" in client.get(f"{base}/runs/{job_id}/view/artifacts/notes.txt").text
    with api(srv) as plain:
        assert "content-security-policy" not in plain.get("/health").headers  # the API is untouched
    script = client.get("/ui/static/job.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "textContent" in script.text and "innerHTML" not in script.text
    client.close()


def test_stored_files_are_served_so_that_they_cannot_run(srv: RunningServer, evaluated: dict[str, Any]) -> None:
    client = signed_in(srv)
    base = f"/ui/projects/{evaluated['project']}/runs/{evaluated['job_id']}/files/artifacts"
    html = client.get(f"{base}/report.html")
    assert html.status_code == 200
    assert html.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in html.headers["content-security-policy"]
    text = client.get(f"{base}/notes.txt")
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert text.headers["content-disposition"].startswith("inline")
    svg = client.get(f"{base}/plot.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert "default-src 'none'" in svg.headers["content-security-policy"]
    assert "sandbox" in svg.headers["content-security-policy"]
    client.close()


def test_log_lines_reach_the_page_as_data_never_as_markup(srv: RunningServer, evaluated: dict[str, Any]) -> None:
    client = signed_in(srv)
    body = client.get(f"/ui/api/projects/{evaluated['project']}/jobs/{evaluated['job_id']}/logs").json()
    texts = [line["text"] for line in body["lines"]]
    assert "<script>alert('log')</script>" in texts  # raw text in JSON; job.js sets textContent
    assert body["job"]["status"] == "completed" and body["more"] is False
    client.close()
