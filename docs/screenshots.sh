#!/usr/bin/env bash
# Produces the README's screenshots of the people-facing pages from a real
# run: the browser test `portal_browser` (headless Chromium over WebDriver;
# Debian's chromium and chromium-driver) drives first-run setup, an invite
# and the account portal, and saves full-page PNGs (wide and 360 px wide,
# light and dark) into docs/screenshots/.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
export LATCH_SCREENSHOTS="$PWD/docs/screenshots"
mkdir -p "$LATCH_SCREENSHOTS"
cargo test -j 2 --test integration -- portal_browser:: --nocapture
ls -l "$LATCH_SCREENSHOTS"
