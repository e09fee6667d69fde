#!/usr/bin/env bash
# The two entry points of a fresh checkout. Each installs what it needs first.
#   bash run.sh start   start the platform on its embedded defaults (SQLite, local disk, local executor)
#   bash run.sh test    run the whole test suite
# To change dependencies: edit pyproject.toml, then
#   .venv/bin/uv pip compile pyproject.toml --extra dev --extra ray --universal --python-version 3.11 \
#     --no-annotate --no-header -o requirements.lock
set -euo pipefail
cd "$(dirname "$0")"

UV_VERSION=0.13.9

ensure_env() {
  if [ ! -x .venv/bin/uv ]; then
    "${PYTHON:-python3}" -m venv .venv
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==${UV_VERSION}"
  fi
  # requirements.lock pins every package, so a fresh machine and CI resolve the same set.
  local stamp=.venv/.modelops-lock
  local want
  want="$(cat requirements.lock pyproject.toml | .venv/bin/python -c 'import hashlib,sys;print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/uv pip sync --quiet --python .venv/bin/python requirements.lock
    .venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps -e .
    echo "$want" > "$stamp"
  fi
}

case "${1:-start}" in
  start)
    ensure_env
    shift || true
    exec .venv/bin/modelops up "$@"
    ;;
  test)
    ensure_env
    shift || true
    # Two workers (CI has two cores); a test file stays on one worker so the servers its
    # module-scoped fixtures start are started once.
    exec .venv/bin/python -m pytest -n "${MODELOPS_TEST_WORKERS:-2}" --dist loadfile "$@"
    ;;
  *)
    echo "usage: bash run.sh [start|test] [args...]" >&2
    exit 2
    ;;
esac
