# `make demo` and `make test` create (or reuse) the virtual environment in
# $(VENV); a second run reinstalls nothing unless requirements.txt or
# pyproject.toml changed.
PYTHON ?= python3
VENV ?= .venv
DATA ?= data/mini
SEED ?= 0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: env data demo test test-readme clean-data

env: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

data: env
	$(PY) -m data_prep.synthetic --out $(DATA) --seed $(SEED)

DEMO_OUT ?= results/runs/demo_nc_5s

# The main job at micro scale: non-contrastive pre-training (paper 000) on the
# 5 s split of the synthetic LibriSpeech, then frozen-feature probes
# (characters by a linear CTC head, speaker id) of the checkpoint against
# three randomly initialised networks of the same shape; then the frame phone
# probe (linear, held-out speakers) against the same random networks and
# log-mel filter banks.
demo: data
	$(PY) recipes/pretrain/train.py hparams/nc_5s.yaml --overrides_file overrides/micro.yaml \
		--data_folder=$(DATA)/LibriSpeech --output_folder=$(DEMO_OUT) --device=cpu
	$(PY) recipes/pretrain/probe.py $(DEMO_OUT)/save --data_folder $(DATA)
	$(PY) -m speechbrain_ext.analysis.phone_probe $(DEMO_OUT)/save --data_folder $(DATA) \
		--max_train_seconds 600 --max_test_seconds 300

# The whole suite, tests/test_readme.py included (it runs the README's
# first-hour commands, shortened, as a newcomer would: a few minutes);
# `make test-readme` runs that one alone, printing each command's time
# (SB_EXT_README_AS_WRITTEN=1: unshortened, the README's timings).
test: env
	SB_EXT_DATA=$(DATA) $(PY) -m pytest -q

test-readme: env
	SB_EXT_DATA=$(DATA) $(PY) -m pytest -q -s tests/test_readme.py

clean-data:
	rm -rf $(DATA)
