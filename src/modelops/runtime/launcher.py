"""The first thing a job with requirements runs, inside the job's own process.

Standard library only, and runnable as a plain script (``python -I -S launcher.py spec.json``):
it may start under the platform's interpreter before the package's environment exists, and it
must start fast. It builds (or reuses) the virtual environment for the package's
``requirements.txt``, printing the build to the job's own output so it is logged as part of
the job, then replaces itself with the job's command (``{python}`` → the environment's
interpreter). A failed build ends the job with the installer's message as its last error line.

Environments live in ``<envs>/<sha256 of requirements.txt>``, one per distinct file. A build
happens under a file lock, in a temporary folder renamed into place when complete, so a
half-built environment is never used and two jobs never build the same one at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

PYTHON_PLACEHOLDER = "{python}"
PLATFORM_PTH = "_modelops_platform.pth"


class BuildFailed(Exception):
    """The environment could not be built; the message is the installer's."""


def say(text: str) -> None:
    print(f"modelops: {text}", flush=True)


def requirements_key(requirements: Path) -> str:
    return hashlib.sha256(requirements.read_bytes()).hexdigest()


def env_python(env_dir: Path) -> Path:
    return env_dir / "bin" / "python"


def ready_python(envs_root: Path, key: str) -> Path | None:
    """The interpreter of a complete environment, or None (only complete ones are renamed in)."""
    python = env_python(envs_root / key)
    return python if python.exists() else None


def _run_installer(argv: list[str], what: str) -> None:
    """Run one uv step, relaying its output live and keeping its error text for the failure."""
    env = dict(os.environ, NO_COLOR="1")
    env.pop("VIRTUAL_ENV", None)
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env=env, text=True, errors="replace",
    )
    assert process.stdout is not None
    kept: list[str] = []
    for line in process.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        kept.append(line.rstrip("\n"))
        del kept[:-40]
    if process.wait() != 0:
        raise BuildFailed(f"{what} failed: {_installer_message(kept) or f'exit code {process.returncode}'}")


def _installer_message(lines: list[str]) -> str:
    """uv reports ``error: <summary>`` then indented ``cause:``/``hint:`` lines: join them."""
    start = next((i for i, line in enumerate(lines) if line.startswith("error:")), None)
    picked = lines[start:] if start is not None else lines[-3:]
    parts = []
    for line in picked:
        text = line.strip().lstrip("×╰─▶│ ").strip()
        for label in ("error:", "cause:", "Caused by:"):
            if text.startswith(label):
                text = text[len(label):].strip()
        if text:
            parts.append(text)
    return ": ".join(parts)


def _platform_pth(platform_sites: list[str]) -> str:
    # addsitedir (not a bare path) so the platform's own .pth files run too: an editable
    # install of modelops, for one, is only importable through its .pth. The environment's
    # site-packages comes first in sys.path, so its packages win over the platform's.
    lines = [f"import site; site.addsitedir({site!r})" for site in platform_sites]
    return "\n".join(lines) + "\n"


def ensure_environment(
    *, requirements: Path, envs_root: Path, uv: str, base_python: str, platform_sites: list[str],
) -> Path:
    """The interpreter of the environment for ``requirements``, built first if needed."""
    key = requirements_key(requirements)
    found = ready_python(envs_root, key)
    if found:
        say(f"environment {key[:12]} is ready (reused)")
        return found
    envs_root.mkdir(parents=True, exist_ok=True)
    with open(envs_root / f".{key}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another job that is building environment {key[:12]}")
            fcntl.flock(lock, fcntl.LOCK_EX)
        found = ready_python(envs_root, key)
        if found:
            say(f"environment {key[:12]} is ready (built by another job)")
            return found
        # Holding the lock, any leftover build folder of this key is from a crashed build.
        for stale in envs_root.glob(f".{key}.build-*"):
            shutil.rmtree(stale, ignore_errors=True)
        building = envs_root / f".{key}.build-{os.getpid()}"
        say(f"building environment {key[:12]} from {requirements.name}")
        try:
            _run_installer(
                [uv, "venv", "--relocatable", "--no-project", "--python", base_python, str(building)],
                "creating the virtual environment",
            )
            site_dirs = sorted(str(p) for p in building.glob("lib/python*/site-packages"))
            for site_dir in site_dirs:
                Path(site_dir, PLATFORM_PTH).write_text(_platform_pth(platform_sites))
            _run_installer(
                [uv, "pip", "install", "--python", str(env_python(building)), "-r",
                 str(requirements)],
                "installing requirements.txt",
            )
            os.rename(building, envs_root / key)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        say(f"environment {key[:12]} is ready")
    return env_python(envs_root / key)


def resolve_command(argv: list[str], python: Path, path: str) -> list[str]:
    command = [str(python) if arg == PYTHON_PLACEHOLDER else arg for arg in argv]
    if "/" not in command[0]:
        found = shutil.which(command[0], path=path)
        if not found:
            raise FileNotFoundError(f"command not found: {command[0]}")
        command[0] = found
    return command


def main(args: list[str]) -> int:
    spec = json.loads(Path(args[0]).read_text())
    try:
        python = ensure_environment(
            requirements=Path(spec["requirements"]), envs_root=Path(spec["envs_root"]),
            uv=spec["uv"], base_python=spec["base_python"], platform_sites=spec["platform_sites"],
        )
    except BuildFailed as exc:
        print(f"ERROR: could not build the package's environment: {exc}", file=sys.stderr, flush=True)
        return 1
    env_dir = python.parent.parent
    env = dict(os.environ)
    env["VIRTUAL_ENV"] = str(env_dir)
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    try:
        command = resolve_command(spec["argv"], python, env["PATH"])
    except FileNotFoundError as exc:
        print(f"ERROR: {exc}", file=sys.stderr, flush=True)
        return 127
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(command[0], command, env)
    return 127  # not reached: execve replaces this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
