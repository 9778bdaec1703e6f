# Feikong — the two set-up commands are `make demo` and `make test`; the rest are parts.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ZAPPA_VENV := .venv-zappa
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30

.PHONY: demo test soak bench lint deps deploy-check resources clean vendor browser

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version' 
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt 2>&1 | sed "/is ignored: it is neither a file nor a directory/d"
	$(PY) -c 'import moto, pynamodb, flask, hypothesis' 
	touch $@

# the Flask app's package is zipped from here: its .pyc files are compiled checked-hash, so
# they stay valid in the zip whatever times it keeps (docs/cold-start.md)
$(ZAPPA_VENV)/.installed-pyc: requirements.txt
	test -x $(ZAPPA_VENV)/bin/python || $(PYTHON) -m venv $(ZAPPA_VENV)
	$(ZAPPA_VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt zappa==0.63.0 2>&1 | sed "/is ignored: it is neither a file nor a directory/d"
	$(ZAPPA_VENV)/bin/python -m compileall -q -f --invalidation-mode checked-hash $(ZAPPA_VENV)/lib >/dev/null
	$(ZAPPA_VENV)/bin/zappa --version >/dev/null
	touch $@

# checkov (the deploy check's policy scan) in its own virtualenv: its pins clash with ours
$(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --disable-pip-version-check checkov==$(CHECKOV_VERSION) 2>&1 | sed "/is ignored: it is neither a file nor a directory/d"
	$(CHECKOV_VENV)/bin/checkov --version >/dev/null
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# the console's browser assets, from npm, served by the app itself (no CDN: docs/console.md)
VENDOR := miniprogram_api/static/vendor
VENDOR_FILES := $(VENDOR)/htmx.min.js $(VENDOR)/echarts.min.js
# the tenant API's docs page (GET /api/v1/docs, docs/tenant-api.md): Swagger UI, served locally
VENDOR_FILES += $(VENDOR)/swagger-ui-bundle.js $(VENDOR)/swagger-ui.css
$(VENDOR)/htmx.min.js: node_modules/.installed
	@mkdir -p $(VENDOR)
	cp node_modules/htmx.org/dist/htmx.min.js $@
$(VENDOR)/echarts.min.js: node_modules/.installed
	@mkdir -p $(VENDOR)
	cp node_modules/echarts/dist/echarts.min.js $@
$(VENDOR)/swagger-ui-bundle.js $(VENDOR)/swagger-ui.css: node_modules/.installed
	@mkdir -p $(VENDOR)
	cp node_modules/swagger-ui-dist/$(notdir $@) $@
vendor: $(VENDOR_FILES)

# the browser tests drive Debian's Chromium (never a Playwright browser download) with a CJK font
browser:
	bash infra/local/browser_deps.sh

deps: $(VENV)/.installed $(ZAPPA_VENV)/.installed-pyc $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION) node_modules/.installed vendor browser

## make demo: run the whole product locally (emulated AWS, seeded property, web app on :8000)
demo: $(VENV)/.installed vendor
	$(PY) -m infra.demo

## make test: lint, layering contracts, unit + integration + e2e tests, offline deploy checks
test: deps
	bash infra/local/run_tests.sh

## make soak: longer concurrency runs of the ledger and the 5,000-item batch under faults (make test runs it with 1,000)
soak: $(VENV)/.installed
	FEIKONG_SOAK=1 bash infra/local/run_tests.sh tests/integration/test_ledger_concurrency.py -k soak
	FEIKONG_SOAK=1 bash infra/local/run_tests.sh tests/chaos/test_batch_faults.py

## make bench: every benchmark, each on its own emulator; fails if any misses a target (all still run)
bench: $(VENV)/.installed
	@failed=""; \
	for b in ledger ingest webhook pay_to_power cold_import cost console api notify batch reports month_end; do \
		bash infra/local/with_stack.sh $(PY) bench/$$b.py || failed="$$failed $$b"; \
	done; \
	$(PY) bench/bus.py || failed="$$failed bus"; \
	if [ -n "$$failed" ]; then echo "make bench: missed a target or failed:$$failed" >&2; exit 1; fi

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

resources: $(VENV)/.installed
	$(PY) -m infra.deploy.resources

deploy-check: deps
	$(PY) -m infra.deploy.deploy_check

clean:
	rm -rf .local .serverless .pytest_cache .hypothesis
