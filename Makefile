# The two commands a new machine needs (README): `make demo` and `make test`.
# Each sets up .venv on first use (scripts/setup_env.sh) and is fast afterwards.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
OUT   ?= out/demo
SITE  ?= substation

.PHONY: setup demo test test-fast regress-ci bench check clean
setup:
	@scripts/setup_env.sh

demo: setup
	$(VENV)/bin/sitebot demo --site $(SITE) --out $(OUT)

test: setup
	$(PY) -m pytest -q --durations=15 tests

# the fast scenario subset that gates every change (the full suite: drop --tags ci)
regress-ci: setup
	$(VENV)/bin/sitebot regress tests/scenarios --tags ci --jobs 2 --out out/regress --junit out/regress/junit.xml

test-fast: setup
	$(PY) -m pytest -q -m "not integration" tests

bench: setup
	$(VENV)/bin/sitebot bench sim
	$(VENV)/bin/sitebot bench control
	$(VENV)/bin/sitebot bench nav
	$(VENV)/bin/sitebot bench perception
	$(VENV)/bin/sitebot bench localization
	$(VENV)/bin/sitebot bench arm
	$(VENV)/bin/sitebot bench planner

check: setup
	$(VENV)/bin/sitebot check urdf/sitebot.urdf.xacro worlds config launch

clean:
	rm -rf _build out .pytest_cache
