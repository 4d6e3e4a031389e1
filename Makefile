# Two entry points: `make run` (demo server on SQLite) and `make test` (whole suite on PostgreSQL).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
RUN_ENV := DEBUG=$${DEBUG:-1} SENTRY_DSN_HOST=$${SENTRY_DSN_HOST:-$(HOST):$(PORT)}

.PHONY: run serve test install clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: install
	$(RUN_ENV) $(PY) manage.py migrate --no-input
	$(RUN_ENV) $(PY) manage.py seed
	@echo
	@PASSWORD=$$($(RUN_ENV) $(PY) manage.py create_admin --username admin | tail -n 1); \
	 [ -n "$$PASSWORD" ] || exit 1; \
	 TOKEN=$$($(RUN_ENV) $(PY) manage.py create_token --user rajraspberry --name demo --reuse \
	   --scopes "org:read project:read project:write project:releases project:admin" | tail -n 1); \
	 echo "Admin: http://$(HOST):$(PORT)/admin/  (sign in as admin, password $$PASSWORD)"; \
	 echo "Bearer token of rajraspberry: $$TOKEN"; \
	 echo "(both kept in .demo-credentials, reused on every start; see docs/admin.md)"; \
	 DSN=$$($(RUN_ENV) $(PY) manage.py project_dsn --org sentry --project sentry 2>/dev/null | tail -n 1); \
	 if [ -n "$$DSN" ]; then echo "DSN of project sentry (for sentry-sdk): $$DSN"; fi; \
	 echo "Try:"; \
	 echo "  curl -H 'Authorization: Bearer $$TOKEN' 'http://$(HOST):$(PORT)/api/0/organizations/sentry/releases/control@abc123/?health=1&adoptionStages=1'"; \
	 echo
	$(RUN_ENV) $(PY) manage.py runserver $(HOST):$(PORT)

# Production: migrate, collect static files, serve with gunicorn (config/gunicorn.conf.py) on
# DATABASE_URL (PostgreSQL, or SQLite by default). Needs SECRET_KEY; see docs/operations.md.
serve: install
	$(PY) manage.py migrate --no-input
	# The API's browsable pages are off: Django REST framework's static files are never used.
	$(PY) manage.py collectstatic --no-input -v 0 --ignore rest_framework
	HOST=$(HOST) PORT=$(PORT) $(VENV)/bin/gunicorn -c config/gunicorn.conf.py

# Uses DATABASE_URL when it is set; otherwise starts a throwaway PostgreSQL for the run.
test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DEBUG=1 $(VENV)/bin/mypy accounts releases benchmarks config
	DJANGO_SETTINGS_MODULE=config.settings_test $(PY) manage.py makemigrations --check --dry-run
	# The OpenAPI schema generates without a warning and validates (docs/api.md, "Schema").
	DJANGO_SETTINGS_MODULE=config.settings_test $(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null
ifdef DATABASE_URL
	$(PY) -m pytest $(PYTEST_ARGS)
else
	$(PY) scripts/pgtmp.py -- $(PY) -m pytest $(PYTEST_ARGS)
endif
ifndef PYTEST_ARGS
	# Search, bulk writes, health numbers, user counts, duration days, retention and job claims
	# once more on SQLite, the embedded default: both must agree.
	DATABASE_URL=sqlite:// $(PY) -m pytest -q tests/test_filters.py tests/test_sql.py tests/test_health.py \
		tests/test_user_counts.py tests/test_duration_days.py tests/test_retention.py tests/test_scheduler.py \
		-m "not postgresql"
endif

clean:
	rm -rf $(VENV) db.sqlite3 artifacts
