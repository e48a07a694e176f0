# The two commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test install services stop check-rls lint bench clean

run: install
	@$(PY) scripts/dev.py run

test: install
	@$(PY) scripts/dev.py test $(PYTEST_ARGS)

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt scripts/ensure-venv.sh
	@sh scripts/ensure-venv.sh "$(PYTHON)" "$(VENV)"
	@$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	@touch $(STAMP)

services: install
	@$(PY) scripts/dev.py services

stop: install
	@$(PY) scripts/dev.py stop

check-rls: services
	@$(PY) manage.py check_rls

lint: install
	@$(VENV)/bin/ruff check .

bench: services
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean: stop
	rm -rf $(VENV) .local
