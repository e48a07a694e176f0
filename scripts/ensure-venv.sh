#!/bin/sh
# Create the virtualenv; on Debian/Ubuntu the venv module may be a separate
# package (python3-venv), installed here when we are root.
set -e
PYTHON="$1"
VENV="$2"
[ -x "$VENV/bin/python" ] && exit 0
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "[sagerock] error: Python 3.11 or newer is needed ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
    exit 1
fi
if "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    exit 0
fi
rm -rf "$VENV"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[sagerock] installing python3-venv"
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
    "$PYTHON" -m venv "$VENV"
else
    echo "[sagerock] error: the Python venv module is missing. Install it with:" >&2
    echo "    sudo apt-get install python3-venv" >&2
    exit 1
fi
