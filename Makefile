# The two commands a newcomer needs. Each sets up .venv first (see scripts/setup.sh).
.PHONY: demo test setup

demo: setup
	HF_HUB_OFFLINE=1 .venv/bin/tiergate demo
	HF_HUB_OFFLINE=1 .venv/bin/python bench/drift.py --quick --work out/demo/drift

test: setup
	scripts/test.sh

setup:
	scripts/setup.sh
