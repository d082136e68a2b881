# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-requirements
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: install run test

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

# Embedded defaults: SQLite under instance/, no Redis server, sandbox Twilio, demo data, and a worker.
# Seeding points the sandbox numbers at PUBLIC_BASE_URL, so the server must answer on that address.
run: export PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)
# The demo records its forwarded calls, so a call's page has a recording to play.
run: export RECORD_CALLS ?= true
run: $(STAMP)
	$(BIN)/flask --app app db upgrade
	$(BIN)/flask --app app demo seed
	@# The worker (database queue, no Redis) runs beside the web server and stops with it.
	$(BIN)/python worker.py & worker=$$!; trap 'kill $$worker 2>/dev/null; wait $$worker' EXIT INT TERM; \
	$(BIN)/flask --app app run --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)
