# loanrisk — run `make help` for the targets.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# The CPU build of torch lies in /opt/wheels on our machines; use it when present.
FIND_LINKS := $(shell [ -d /opt/wheels ] && echo --find-links /opt/wheels)

# Every install takes its versions from requirements.lock (constraints: the tested set, Python 3.11
# on Linux); `make lock` refreshes it from a fresh resolve.
LOCK := requirements.lock

.PHONY: help venv demo test lint docs bench clean browser ui lock

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml $(LOCK)
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(FIND_LINKS) "torch==2.13.0"
	$(PIP) install -q $(FIND_LINKS) -c $(LOCK) -e ".[all,dev]"
	$(PIP) check
	$(PY) -m compileall -q src >/dev/null  # an editable install is not byte-compiled by pip
	touch $@

lock:  ## re-resolve every dependency (.[all,dev], newest allowed) into requirements.lock
	rm -rf /tmp/loanrisk-lock && python3 -m venv /tmp/loanrisk-lock
	/tmp/loanrisk-lock/bin/pip install -q --upgrade pip
	/tmp/loanrisk-lock/bin/pip install -q $(FIND_LINKS) "torch==2.13.0"
	/tmp/loanrisk-lock/bin/pip install -q $(FIND_LINKS) ".[all,dev]"
	/tmp/loanrisk-lock/bin/pip check
	{ echo "# loanrisk's tested dependency set (Python 3.11, Linux x86_64): make lock refreshes it."; \
	  echo "# Used as constraints (-c); torch's CPU build comes from --find-links /opt/wheels."; \
	  /tmp/loanrisk-lock/bin/pip freeze --exclude-editable | grep -v '^loanrisk' \
	    | sed -E 's/^(torch==[0-9.]+)\+cpu$$/\1/'; } > $(LOCK)
	rm -rf /tmp/loanrisk-lock

venv: $(VENV)/.installed  ## create .venv and install loanrisk with every extra

demo: venv  ## learn on both bundled Lending Club datasets and print where the reports are
	$(VENV)/bin/loanrisk learn --dataset lending-club-grades
	$(VENV)/bin/loanrisk learn --dataset lending-club-default
	$(VENV)/bin/loanrisk models list

browser:  ## install Debian's headless Chromium + driver for the UI browser test (as root)
	@command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || \
		(apt-get update -qq && apt-get install -y -qq chromium chromium-driver)

ui: venv  ## open the Streamlit app (loanrisk ui)
	$(VENV)/bin/loanrisk ui

test: venv browser  ## run the whole test suite
	$(VENV)/bin/python -m pytest -q

lint:  venv ## ruff (style and bugs), mypy (types), import-linter (layers) and the docs site (mkdocs --strict)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mkdocs build --strict --quiet --site-dir site

docs: venv  ## serve the documentation site on http://127.0.0.1:8001/ (mkdocs serve)
	$(VENV)/bin/mkdocs serve

bench: venv  ## run the benchmarks (figures go to bench/RESULTS.md)
	$(PY) bench/bench_mlp.py

clean:  ## remove the virtual environment
	rm -rf $(VENV)
