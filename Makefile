# The two commands of the README:
#   make demo   set up everything, then synthesize -> train tiny -> export -> eval (a few minutes)
#   make test   set up everything, then run the linters and the whole test suite
#   make fuzz   libFuzzer on the protocol receiver, app dispatch and frontend (ASan+UBSan), each for
#               FUZZ_SECONDS (default 300) under nice; corpora kept in build/fuzz (firmware/fuzz/Makefile)
# `make setup` alone installs system packages (apt-get) and the Python virtualenv in .venv.

SHELL   := /bin/bash
VENV    ?= .venv
PY      := $(VENV)/bin/python
APT_PKGS := build-essential python3-venv python3-dev gcc-arm-none-eabi libnewlib-arm-none-eabi \
            qemu-system-arm espeak-ng sox clang clang-format
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_OUT ?= runs/demo
PYTEST_ARGS ?=

.PHONY: setup system-packages venv demo test lint format clean fuzz

setup: system-packages venv

system-packages:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing system packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

# Exact versions from constraints.txt (every package of the tested environment).
# The extension holds the frontend and the kernels' compile-time packing: rebuild it when they change.
$(VENV)/.installed: pyproject.toml setup.py constraints.txt $(wildcard firmware/lib/frontend/*.[ch]) \
                    $(wildcard tools/nanokws/features/*.c) $(wildcard tools/nanokws/compiler/*.c) \
                    $(wildcard firmware/lib/kernels/*_pack.c) $(wildcard firmware/lib/kernels/nk_kernels*.h)
	@[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt --upgrade pip
	NANOKWS_WERROR=1 $(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed

demo: setup
	$(VENV)/bin/nanokws demo --out $(DEMO_OUT)

# Our C/C++ in one style (.clang-format). Excluded: generated code (firmware/model/, the frontend's
# tables) and the fixture models that stand in for it (tests/fixtures/fw_model*/, parsed like it).
FORMAT_FILES = $(shell git ls-files '*.c' '*.h' '*.cc' '*.cpp' '*.ino' 2>/dev/null | \
                 grep -v -e '^firmware/model/' -e 'nk_frontend_tables\.[ch]$$' -e '^tests/fixtures/fw_model')

lint: venv
	$(VENV)/bin/ruff check tools tests
	$(if $(FORMAT_FILES),clang-format --dry-run --Werror $(FORMAT_FILES),@echo "not a git checkout: C style not checked")

format:
	$(if $(FORMAT_FILES),clang-format -i $(FORMAT_FILES),@echo "not a git checkout: nothing to format")

test: setup lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

FUZZ_SECONDS ?= 300
fuzz: setup
	$(MAKE) -C firmware/fuzz run FUZZ_SECONDS=$(FUZZ_SECONDS) PYTHON=$(abspath $(PY))

clean:
	rm -rf build runs firmware/build
