# Shortcuts for workshop.py, which does the work (and runs without make, e.g. on Windows).
PYTHON ?= python3
STEP ?=
PORT ?= 8000
# TESTS=1: compare shows the test files too.
TESTS ?=

.PHONY: run test generate bench start check compare reset

run:
	$(PYTHON) workshop.py run $(STEP) --port $(PORT)

test:
	$(PYTHON) workshop.py test $(STEP)

generate:
	$(PYTHON) workshop.py generate

# Load a step (default: the last one) with many sockets; docs/performance.md shows the options and the results.
bench:
	$(PYTHON) workshop.py bench $(STEP)

# The workbench: type a step yourself in workbench/ (see the README).
start check reset:
	$(PYTHON) workshop.py $@ $(STEP)

compare:
	$(PYTHON) workshop.py compare $(STEP) $(if $(TESTS),--tests)
