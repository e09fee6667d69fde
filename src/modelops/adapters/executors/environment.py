"""The environment variables a job's process gets: an allow-list, never the server's own.

The server's environment holds the database URL, tokens and cloud credentials; a job runs
user code, so it sees only what running and installing a package needs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

# Names copied from the server's environment when set. Locale, home and PATH make programs
# behave; the installer and TLS settings let a package environment be built behind a proxy or
# a private index.
PASSED_THROUGH = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TERM", "XDG_CACHE_HOME",
        "SSL_CERT_FILE", "SSL_CERT_DIR",
        "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
        "UV_CACHE_DIR", "UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_EXTRA_INDEX_URL", "UV_INDEX",
        "UV_OFFLINE", "UV_NATIVE_TLS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL",
    }
)
PASSED_THROUGH_PREFIXES = ("LC_",)
# Never handed to a job, even if a job kind asks: these would let user code reach the
# metadata database or act with the server's identity.
FORBIDDEN_PREFIXES = ("MODELOPS_DATABASE", "MODELOPS_TOKEN", "MODELOPS_ARTIFACTS")


def job_environment(
    *, job_id: int, interpreter_dir: Path, tmp_dir: Path, extra: Mapping[str, str],
    source: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Build a job's environment from the allow-list, the job kind's extras and a few fixed
    settings (unbuffered Python so logs arrive live, a private TMPDIR, the interpreter first
    on PATH)."""
    source = os.environ if source is None else source
    env = {
        name: value for name, value in source.items()
        if name in PASSED_THROUGH or name.startswith(PASSED_THROUGH_PREFIXES)
    }
    env.setdefault("PATH", os.defpath)
    env.setdefault("LANG", "C.UTF-8")
    # A private HOME: the server's holds the admin token where the client looks for it by
    # default, and user code must not find it there. The installer keeps the shared cache.
    server_home = source.get("HOME")
    if server_home and "UV_CACHE_DIR" not in env and "XDG_CACHE_HOME" not in env:
        env["UV_CACHE_DIR"] = str(Path(server_home) / ".cache" / "uv")
    env["HOME"] = str(tmp_dir)
    for name, value in extra.items():
        if name.startswith(FORBIDDEN_PREFIXES):
            raise ValueError(f"a job may not be given {name}")
        env[name] = value
    env["PATH"] = f"{interpreter_dir}{os.pathsep}{env['PATH']}"
    env["PYTHONUNBUFFERED"] = "1"
    env["TMPDIR"] = str(tmp_dir)
    env["MODELOPS_JOB_ID"] = str(job_id)
    return env
