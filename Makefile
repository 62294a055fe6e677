# Transformers, from attention math to fine-tuning: the two commands.
#   make lab      set up .venv (once) and open JupyterLab on notebooks/
#   make test     set up .venv (once) and run every test and notebook, offline
#   make outputs  re-execute every notebook in the canonical offline environment
#   make test-browser  run every notebook in JupyterLab in Chromium (tests/browser)
#   make test-latest   the whole suite with the newest release of every requirement (.venv-latest)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KERNEL := transformers-course
WORKERS ?= 2

.PHONY: setup prepare lab test outputs benchmark clean test-online-rehearsal test-online test-browser test-latest

setup: prepare

# Reinstall only when the requirements or the package metadata change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Transformers course (.venv)" >/dev/null
	@# nbgrader is for teachers' `make classroom` (command line); keep its menus out of learners' JupyterLab
	@# (docs/teaching.md says how to turn them on)
	$(BIN)/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader >/dev/null 2>&1
	for e in formgrader validate_assignment assignment_list course_list; do \
		$(BIN)/jupyter server extension disable --sys-prefix nbgrader.server_extensions.$$e >/dev/null 2>&1 || exit 1; done
	touch $(STAMP)

# Fetch and cache, once, what the course needs offline (the real review sentences); fast when cached.
prepare: $(STAMP)
	$(BIN)/python -m course_utils.prepare

# JupyterLab opens even if prepare failed (offline, the notebooks then use generated reviews)
lab: $(STAMP)
	-$(BIN)/python -m course_utils.prepare
	$(BIN)/jupyter lab notebooks/

# The browser tests run after the others, on their own: their kernels must not compete with nbval's.
# Without a Chromium they are skipped with one line, unless COURSE_REQUIRE_BROWSER=1 (CI).
test: prepare
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadfile -m "not browser"
	@if [ "$$COURSE_REQUIRE_BROWSER" = 1 ] || $(BIN)/python -m tests.browser.chromium >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory test-browser; \
	else \
		echo "make test: browser tests SKIPPED: no Chromium found (install one, see README 'Browser tests'; or set COURSE_CHROMIUM)"; \
	fi

# Two workers: each starts its own JupyterLab and Chromium, so two notebook kernels run side by side
# (tests/browser/conftest.py: BROWSER_ORDER).
# Without nbval (and pyproject's --nbval options): the plugin's imports cost every process seconds.
test-browser: prepare
	$(BIN)/python -m pytest -o addopts="" -p no:nbval -p no:cacheprovider -n $(WORKERS) --dist load -m browser tests/browser

# Maintainers, before bumping pins: newest releases of every requirement but torch, whole suite.
test-latest: prepare
	$(PYTHON) scripts/latest_lane.py

outputs: prepare
	$(BIN)/python scripts/make_outputs.py

benchmark: $(STAMP)
	$(BIN)/python scripts/benchmark.py

# The online path (no offline variable, hub names, downloads) on every notebook, in quick mode
# on the CPU. Rehearsal: a local hub on 127.0.0.1 with full-size replicas (random weights) and
# an IMDb replica, built once under data/cache/online-replicas/. test-online: the real hub and
# IMDb server, for maintainers with internet before a release.
test-online-rehearsal: $(STAMP)
	$(BIN)/python -m tests.online.rehearsal

test-online: $(STAMP)
	$(BIN)/python -m tests.online.rehearsal --real

# The learner and solutions notebooks of every chapter, from its one source in authoring/
# (scripts/build_notebooks.py; unchanged cells keep their outputs).
.PHONY: notebooks classroom
notebooks: $(STAMP)
	$(BIN)/python scripts/build_notebooks.py

# An nbgrader course directory under build/classroom/ (git-ignored): one assignment per chapter.
classroom: $(STAMP)
	$(BIN)/python scripts/classroom.py

clean:
	rm -rf data/cache $(VENV)
