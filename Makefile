# Entry points: `make demo` (the main job) and `make test`. Both create .venv on first use.
# GPU machines: make TF_PACKAGE='tensorflow[and-cuda]~=2.21.0' demo

PYTHON ?= python3
VENV ?= .venv
TF_PACKAGE ?=
PY := $(VENV)/bin/python

.PHONY: demo test

$(VENV)/.ready: requirements.txt tests/requirements.txt tests/requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@if [ -n "$(TF_PACKAGE)" ]; then \
	  $(PY) -m pip install --quiet "$(TF_PACKAGE)" && grep -v '^tensorflow-cpu' requirements.txt > $(VENV)/requirements.txt; \
	else cp requirements.txt $(VENV)/requirements.txt; fi
	$(PY) -m pip install --quiet -r $(VENV)/requirements.txt -r tests/requirements.txt
	$(PY) -m pip install --quiet --no-deps -r tests/requirements-nodeps.txt
	touch $@

demo: $(VENV)/.ready
	$(PY) -m runners.generate --resolution=32 --seeds=0-15 --outdir=out/demo

test: $(VENV)/.ready
	$(PY) -m pytest -q
