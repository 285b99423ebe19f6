# Shieldwall: `make run` starts the console, `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export PORT ?= 8000

# Debian packages the console and its tests use (installed when missing and run as root).
DEB_PACKAGES := chromium tshark nftables iptables ipset prometheus-alertmanager poppler-utils iproute2 rabbitmq-server dovecot-imapd

.PHONY: venv run test lint format deps check bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $@

deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "Installing Debian packages:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "Missing Debian packages (tests that need them are skipped):$$missing"; echo "  sudo apt-get install$$missing"; fi; \
	fi

# As root, the demo's enforcement target is a network namespace of its own (never this
# host's firewall); otherwise the demo exports only.
DEMO_NETNS ?= shieldwall-demo
export DEMO_NETNS

run: venv
	@if [ "$$(id -u)" = 0 ] && command -v ip >/dev/null && ! ip netns list | grep -qw "$(DEMO_NETNS)"; then \
	  ip netns add "$(DEMO_NETNS)" && echo "demo enforcement target: network namespace $(DEMO_NETNS)"; fi
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-1} $(PY) manage.py seed_demo
	DEBUG=$${DEBUG:-1} $(PY) manage.py runconsole --port $(PORT)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	# The Django plugin loads the settings: the testing settings need no SECRET_KEY (a fresh clone has none).
	SHIELDWALL_TESTING=1 $(VENV)/bin/mypy

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

check: venv
	SHIELDWALL_TESTING=1 $(PY) manage.py check
	SHIELDWALL_TESTING=1 $(PY) manage.py makemigrations --check --dry-run

test: venv deps lint check
	PY=$(PY) tests/run $(PYTEST_ARGS)

bench: venv
	$(PY) bench/ingest.py
	$(PY) bench/traffic.py

clean:
	rm -rf var/broker var/cache var/staticfiles
