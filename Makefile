# Sieve: `make run` starts the demo, `make test` runs the whole suite. See README.md.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.txt | cut -c1-16)
PORT ?= 8000

export DJANGO_SETTINGS_MODULE := config.settings

.PHONY: run test venv bench lint clean

venv: $(STAMP)

$(STAMP): requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "Sieve needs $(PYTHON) (Python 3.11) on the PATH"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-virtualenv -r requirements.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

# The embedded default: SQLite and kombu's filesystem broker under var/, unless DATABASE_URL /
# REDIS_URL are set. Ctrl-C stops the web server, the worker and its scheduler together.
# The demo, the suite and the benches run on the built-in secrets: SIEVE_DEV=1 (docs/operations/configuration.md).
run test bench: export SIEVE_DEV = 1
run: venv
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python manage.py demo --port $(PORT)
	@PORT=$(PORT) bin/run

# The suite runs on PostgreSQL and Redis: DATABASE_URL / REDIS_URL, else the local servers.
test: venv
	@bin/ensure-services
	@$(BIN)/python manage.py collectstatic --noinput -v0
	@set -a; . ./.test-env 2>/dev/null; set +a; \
	  $(BIN)/python -m pytest; status=$$?; \
	  if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$status

bench: venv
	@bin/ensure-services
	@set -a; . ./.test-env; set +a; for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf var staticfiles .pytest_cache .test-env
