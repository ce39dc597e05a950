#!/bin/sh
# Screenshots of the admin console for the README's tour, from a real run:
# a Latch server with a few people, apps and a month of sign-ins, driven by
# headless Chromium (Debian's chromium and chromium-driver). Writes
# docs/tour/console-<page>-<light|dark|narrow>.png.
set -eu
cd "$(dirname "$0")/../.."
LATCH_TOUR_DIR="$PWD/docs/tour" cargo test -j 2 --test integration -- --exact \
    console_browser::console_tour_screenshots --nocapture
