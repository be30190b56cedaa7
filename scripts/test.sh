#!/usr/bin/env bash
# Lint, type-check and test. Run through `make test`, which sets up .venv first.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

# Redis and PostgreSQL for the fleet tests (Debian packages, as root, where missing); the tests
# start and stop their own servers.
scripts/services.sh

echo "== ruff"
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/python -m pytest "$@"
