# `make demo` and `make test` create (or reuse) the virtual environment in
# $(VENV); a second run reinstalls nothing unless requirements.txt or
# pyproject.toml changed.
PYTHON ?= python3
VENV ?= .venv
DATA ?= data/mini
SEED ?= 0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: env data demo test clean-data

env: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

data: env
	$(PY) -m data_prep.synthetic --out $(DATA) --seed $(SEED)

demo: data
	@echo "[demo] synthetic corpora are in $(DATA)."
	@echo "[demo] next (pre-training issue): python recipes/pretrain/train.py hparams/nc_5s.yaml with the micro-scale override"

test: env
	SB_EXT_DATA=$(DATA) $(PY) -m pytest -q

clean-data:
	rm -rf $(DATA)
