# Two commands: `make run` serves the site with demo data, `make test` passes the tests.
# Both create the virtualenv and install what they need on first use.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint bench-check clean

$(BIN)/.installed: requirements.txt requirements-dev.txt requirements-captions.txt package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements-captions.txt
	npm ci --no-audit --no-fund --loglevel=error  # axe-core for the accessibility test; Turbo, to check its vendored copy
	touch $@

# Run the whole site on embedded defaults: SQLite, in-memory channel layer, tasks in-process.
# SITE_URL follows HOST and PORT (links in e-mails, the printed log-in address) unless it is set.
# Without STRIPE_SECRET_KEY, payments are the demo's: the project's Stripe stand-in runs beside the
# site on STRIPE_PORT (its objects kept in var/), and every payment page says "Demo payments".
STRIPE_PORT ?= 12111
run: export DEBUG = 1
run: export SITE_URL ?= http://$(HOST):$(PORT)
run: export SPACES_DEMO_STRIPE_PORT = $(STRIPE_PORT)
run: $(BIN)/.installed
	@set -e; mkdir -p var; \
	if [ -z "$$STRIPE_SECRET_KEY" ]; then \
	  export SPACES_DEMO_PAYMENTS=1; \
	  $(BIN)/python -m ticketing.stripe_standin --port $(STRIPE_PORT) --state-file var/stripe-standin.json \
	    --webhook-url $$SITE_URL/stripe/webhook/ > var/stripe-standin.log 2>&1 & \
	  trap "kill $$! 2>/dev/null" EXIT INT TERM; \
	  echo "Demo payments: the Stripe stand-in on 127.0.0.1:$(STRIPE_PORT) (no real money)"; \
	fi; \
	$(BIN)/python manage.py migrate --noinput -v0; \
	LOG_LEVEL=WARNING $(BIN)/python manage.py seed_demo; \
	$(BIN)/python manage.py collectstatic --noinput -v0; \
	echo "Serving at $$SITE_URL/ (Ctrl-C stops it)"; \
	$(BIN)/daphne --access-log /dev/null -b $(HOST) -p $(PORT) spaces_site.asgi:application

# Lint, migrations check, then the suite on SQLite and, where they answer, on PostgreSQL + Redis.
test: $(BIN)/.installed
	$(BIN)/python scripts/run_tests.py

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
