# Two commands do all set-up on a fresh machine:
#   make demo   - install, train the demo recipe, evaluate, write its Hub folder, reload it, print its card
#   make test   - install, run the test suite (including slow checks) against the data mirror
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# The dataset mirror (Hub-id-named folders). Unset it to read from the Hugging Face Hub.
export VAEZOO_DATA_DIR ?= $(abspath ../shared/data)
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
DEMO ?= vae-stdplus-static-mnist
# One process by default; on a GPU machine `accelerate launch` picks the GPU up unchanged.
LAUNCH := $(VENV)/bin/accelerate launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no
# Two synchronized CPU processes (gloo); see README "Training on several processes".
LAUNCH2 := ACCELERATE_USE_CPU=1 $(VENV)/bin/accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no

.PHONY: install demo test test-fast train zoo-table clean

install: $(VENV)/.installed

# torch first: `pip install torch==2.13.0` takes the local CPU wheel here (a bare `torch` would pull CUDA).
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	touch $@

demo: install
	$(OFFLINE) $(LAUNCH) training/train.py hub_configs/$(DEMO).yaml
	$(OFFLINE) $(VENV)/bin/vaezoo show model_cards/$(DEMO)

train: install
	$(OFFLINE) $(LAUNCH) training/train.py hub_configs/$(RECIPE).yaml

test: install
	$(OFFLINE) $(PY) -m pytest -q

test-fast: install
	$(OFFLINE) $(PY) -m pytest -q -m "not slow"

# Regenerate the README zoo table from the cards under model_cards/ (the test suite checks it).
zoo-table: install
	$(VENV)/bin/vaezoo zoo-table

clean:
	rm -rf runs build *.egg-info .pytest_cache
