#!/usr/bin/env bash
# Installs SecantusDB — a MongoDB wire-protocol server over WiredTiger — into
# $REPO/.mongo-venv for the Mongo store tests (no real mongod can be installed here;
# see ../shared/reference/mongodb-for-tests.md). Idempotent: a venv that already has
# the pinned version is reused. Prints the path of `secantusd-py` on stdout (the only
# stdout line), so callers can do: export MONGO_SERVER_BIN="$(.ci/install-mongo.sh)".
# SecantusDB is GPL-2.0-only: it only ever runs as a separate process, never linked.
set -euo pipefail

VERSION="0.7.0b3"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.mongo-venv"
BIN="$VENV/bin/secantusd-py"
PYTHON="${PYTHON:-python3}"

installed_version() {
    "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("SecantusDB"))' 2>/dev/null || true
}

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "install-mongo: creating $VENV" >&2
    "$PYTHON" -m venv "$VENV" >&2
fi

if [[ "$(installed_version)" != "$VERSION" || ! -x "$BIN" ]]; then
    echo "install-mongo: installing SecantusDB==$VERSION" >&2
    "$VENV/bin/pip" install -q --disable-pip-version-check "SecantusDB==$VERSION" >&2
fi

if [[ ! -x "$BIN" ]]; then
    echo "install-mongo: $BIN missing after install" >&2
    exit 1
fi
echo "$BIN"
