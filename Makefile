# Shortcuts for the README's two commands (the scripts need no make).
.PHONY: up test setup bench lint
up:
	bash scripts/up.sh
test:
	bash scripts/test.sh
setup:
	bash scripts/setup.sh
lint:
	.venv/bin/ruff check .
bench:
	.venv/bin/python bench/run_latency.py
