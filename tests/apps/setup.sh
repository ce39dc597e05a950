#!/usr/bin/env bash
# Installs the real apps and OpenID Connect libraries that the preset
# sign-in tests drive into this folder (gitignored): a Python virtual
# environment in .venv (django-allauth, JupyterHub with oauthenticator) and
# node_modules (NextAuth v4, configurable-http-proxy). .ci/run calls it;
# safe to run again (an install that is already complete is skipped).
# Prints how long each part took and how much disk it uses.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"

stamp() { sha256sum "$1" | cut -d' ' -f1; }

if [ "$(cat .venv/.installed 2>/dev/null)" != "$(stamp requirements.txt)" ]; then
    start=$SECONDS
    rm -rf .venv
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
    stamp requirements.txt >.venv/.installed
    echo "PyPI packages installed in $((SECONDS - start))s, $(du -sh .venv | cut -f1)"
else
    echo "PyPI packages already installed ($(du -sh .venv | cut -f1))"
fi

if [ "$(cat node_modules/.installed 2>/dev/null)" != "$(stamp package.json)" ]; then
    start=$SECONDS
    # NextAuth's peers (Next.js, React) are left out on purpose: the test
    # drives NextAuth's own handler from a plain Node.js server.
    npm install --silent --no-audit --no-fund --legacy-peer-deps --no-package-lock
    stamp package.json >node_modules/.installed
    echo "npm packages installed in $((SECONDS - start))s, $(du -sh node_modules | cut -f1)"
else
    echo "npm packages already installed ($(du -sh node_modules | cut -f1))"
fi
