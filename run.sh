#!/usr/bin/env bash
# The two entry points of a fresh checkout. Each installs what it needs first.
#   bash run.sh start   start the platform on its embedded defaults (SQLite, local disk, local executor)
#   bash run.sh test    run the whole test suite
set -euo pipefail
cd "$(dirname "$0")"

UV_VERSION=0.13.9

ensure_env() {
  if [ ! -x .venv/bin/uv ]; then
    "${PYTHON:-python3}" -m venv .venv
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==${UV_VERSION}"
  fi
  # The lock file pins every package, so a fresh machine and CI resolve the same set.
  .venv/bin/uv sync --frozen --quiet
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
    exec .venv/bin/python -m pytest "$@"
    ;;
  *)
    echo "usage: bash run.sh [start|test] [args...]" >&2
    exit 2
    ;;
esac
