# The front door: `make run` serves the API, `make test` runs every check. Nothing else to set up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: run cluster test fuzz fault drill seed bench superuser lint format checks nginx redis

run: $(INSTALLED) nginx  ## Serve the API on $HOST:$PORT (default 127.0.0.1:8000): nginx in front of gunicorn
	@$(PY) scripts/dev.py serve

cluster: $(INSTALLED) nginx redis  ## Three instances behind nginx on $PORT, a PostgreSQL primary and replica, Redis
	@$(PY) scripts/cluster.py

test: $(INSTALLED) nginx redis  ## The whole suite under coverage, lint, migration and deploy checks
	@test -x /usr/bin/chromium || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)  # the browser test's browser
	@$(PY) scripts/dev.py run -- $(MAKE) --no-print-directory checks

fuzz: $(INSTALLED)  ## Schemathesis against the API's own OpenAPI schema, in-process, on a throwaway database
	@LOG_LEVEL=$${LOG_LEVEL:-WARNING} $(PY) scripts/dev.py run -- $(PY) scripts/fuzz.py

fault: $(INSTALLED)  ## Stop and restart PostgreSQL under load: 503s meanwhile, quick recovery, no lost write
	@$(PY) scripts/fault_tolerance.py

drill: $(INSTALLED) nginx redis  ## make cluster under load while instances restart, die and Redis pauses
	@$(PY) scripts/cluster_drill.py

seed: $(INSTALLED)  ## Demo data: make seed ARGS="--patients 100000 --doctors 1000 --mappings 100000 --reset"
	@$(PY) scripts/dev.py run -- sh -c '$(PY) manage.py migrate --noinput --verbosity 0 && $(PY) manage.py seed_demo $(ARGS)'

bench: $(INSTALLED) nginx redis  ## Measure the API under load against a bare ceiling, then the cluster; writes BENCHMARKS.md (BENCH_QUICK=1: short)
	@command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	@$(PY) -m benchmarks.run && $(PY) -m benchmarks.cluster

superuser: $(INSTALLED)  ## An admin account: prompts; or USERNAME=... EMAIL=... with DJANGO_SUPERUSER_PASSWORD set
	@$(PY) scripts/dev.py run -- $(PY) manage.py superuser
# Only from make's command line: desktop sessions and sudo export a USERNAME of their own.
ifeq ($(origin USERNAME),command line)
superuser: export DJANGO_SUPERUSER_USERNAME := $(USERNAME)
endif
ifeq ($(origin EMAIL),command line)
superuser: export DJANGO_SUPERUSER_EMAIL := $(EMAIL)
endif

lint: $(INSTALLED)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(INSTALLED)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# Run by `make test` with DATABASE_URL set; not meant to be called directly.
checks:
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) -m coverage erase
	LOG_LEVEL=$${LOG_LEVEL:-WARNING} $(PY) -m coverage run manage.py test --noinput --verbosity 1
	$(PY) -m coverage report
	$(MAKE) --no-print-directory lint
	$(PY) manage.py makemigrations --check --dry-run
	LOG_LEVEL=WARNING $(PY) manage.py lintmigrations --quiet ok ignore  # unsafe-while-serving migrations (pyproject.toml)
	$(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null
	DEBUG=false HTTPS=true SECRET_KEY="$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(64))')" \
		$(PY) manage.py check --deploy --fail-level WARNING

# Debian's nginx, in front of gunicorn for make run, the server tests and make bench; installed if missing.
nginx:
	@test -x /usr/sbin/nginx || command -v nginx >/dev/null || \
		(apt-get update && apt-get install -y --no-install-recommends nginx)

# Debian's Redis, for make test, cluster, drill and bench (each starts its own redis-server); installed if missing.
redis:
	@command -v redis-server >/dev/null || test -x /usr/bin/redis-server || \
		(apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server)

$(INSTALLED): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@
