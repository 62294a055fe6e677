# Transformers, from attention math to fine-tuning: the two commands.
#   make lab      set up .venv (once) and open JupyterLab on notebooks/
#   make test     set up .venv (once) and run every test and notebook, offline
#   make outputs  re-execute every notebook in the canonical offline environment

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KERNEL := transformers-course
WORKERS ?= 2

.PHONY: setup lab test outputs benchmark clean

setup: $(STAMP)

# Reinstall only when the requirements or the package metadata change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Transformers course (.venv)" >/dev/null
	touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

test: $(STAMP)
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadfile

outputs: $(STAMP)
	$(BIN)/python scripts/make_outputs.py

benchmark: $(STAMP)
	$(BIN)/python scripts/benchmark.py

clean:
	rm -rf data/cache $(VENV)
