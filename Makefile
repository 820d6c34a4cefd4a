# The two commands: `make demo` and `make test`. Both set everything up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000

.PHONY: demo test install lint format bench chromium clean

# The demo and the tests need the development set (moto, pytest, Playwright, ruff), which
# includes the runtime set; the Docker image installs requirements.txt alone.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

demo: install
	mkdir -p var staticfiles
	DJANGO_DEBUG=true $(PY) manage.py demo --port $(PORT)

# Browser tests need Debian's Chromium; install it when we are root and it is missing.
chromium:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

test: install chromium
	mkdir -p var staticfiles
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) tests/benchmarks/ssm_throughput.py
	$(PY) tests/benchmarks/stopped_scan.py

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache
