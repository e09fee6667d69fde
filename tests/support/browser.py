"""A headless Chromium for the dashboard tests (Debian's package, installed once if missing),
and a browser-like HTTP client for the tests that need no browser.

Playwright's own browser download cannot work here (no network beyond the system's package
manager), so the tests drive the distribution's Chromium through ``executable_path``. When it
is missing and we are root, ``apt-get install -y chromium`` runs once (after ``apt-get update``
if the first try fails); if that fails too, the caller skips with the reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "output" / "screenshots"
_INSTALL_TIMEOUT = 900


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    return subprocess.run(
        ["apt-get", *args], capture_output=True, text=True, env=env, timeout=_INSTALL_TIMEOUT
    )


def ensure_chromium() -> Path:
    """The Chromium binary, installing Debian's package when missing; skip when impossible."""
    if CHROMIUM.exists():
        return CHROMIUM
    if shutil.which("apt-get") is None:
        pytest.skip(f"{CHROMIUM} is missing and apt-get is not available to install it")
    if os.geteuid() != 0:
        pytest.skip(f"{CHROMIUM} is missing and installing it needs root (apt-get install chromium)")
    result = _apt("install", "-y", "--no-install-recommends", "chromium")
    if result.returncode != 0:
        # A fresh machine may have no package lists yet.
        _apt("update")
        result = _apt("install", "-y", "--no-install-recommends", "chromium")
    if result.returncode != 0 or not CHROMIUM.exists():
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        pytest.skip("could not install chromium with apt-get: " + " | ".join(tail))
    return CHROMIUM


@contextmanager
def chromium_browser() -> Iterator[Any]:
    """A launched headless Chromium (Playwright ``Browser``), closed afterwards."""
    executable = ensure_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - playwright is in the lock file
        pytest.skip(f"playwright is not installed: {exc}")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(executable), args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under tests/output/screenshots/ (git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def zip_folder(source: Path, destination: Path) -> Path:
    """A zip of ``source``'s files (paths relative to it), without byte-code caches: what a
    user uploads through a file input."""
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(source).as_posix())
    return destination


# --------------------------------------------------------------------------- without a browser


class WebClient:
    """A browser-like client: keeps cookies, reads the CSRF token from each page it loads."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, follow_redirects=False, timeout=60)
        self.csrf = ""

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.get(path, **kwargs)
        found = re.search(r'<meta name="csrf-token" content="([^"]+)">', response.text)
        if found:
            self.csrf = found.group(1)
        return response

    def post(self, path: str, data: dict[str, str] | None = None, *, csrf: str | None = None,
             **kwargs: Any) -> httpx.Response:
        form = dict(data or {})
        if csrf is None:
            csrf = self.csrf
        if csrf:
            form["csrf_token"] = csrf
        return self.http.post(path, data=form, **kwargs)

    def sign_in(self, token: str) -> httpx.Response:
        self.get("/ui/login")
        return self.post("/ui/login", {"token": token, "next": "/ui/"})

    def close(self) -> None:
        self.http.close()


def signed_in(srv: Any, token: str | None = None) -> WebClient:
    """A client signed in through the sign-in form (the admin token unless one is given)."""
    client = WebClient(srv.url)
    response = client.sign_in(token or srv.token)
    assert response.status_code == 303, response.text
    client.get("/ui/")
    return client
