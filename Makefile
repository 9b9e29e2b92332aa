# make demo  — build .venv if absent, then run the demo on the built-in default
# make test  — chromium, chromium-driver, ffmpeg, rtsp-server-perl and postgresql for the browser, stream and deployment tests
#              (scripts/system-packages.sh: installed with apt-get when absent, as root or
#              through `sudo -n`; else it stops at once with the install command), build
#              .venv if absent, then run the whole test suite
# A second run does nothing extra: the environment is rebuilt only when a
# pyproject.toml changes.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.uprm-installed
# every distribution of this repository, core first
PACKAGES := packages/uprm-core $(filter-out packages/uprm-core,$(sort $(wildcard packages/uprm-*)))
# torch and torchvision must come as this pair (see docs/design.md, "Environment")
TORCH  := torch==2.14.1 torchvision==0.29.1

export UPRM_OFFLINE := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export YOLO_OFFLINE := 1
export UPRM_CACHE ?= $(CURDIR)/.cache/uprm

.PHONY: demo test venv lint bench clean system-packages

venv: $(STAMP)

$(STAMP): pyproject.toml $(wildcard packages/*/pyproject.toml)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade "pip>=25.1"
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet --group dev -e "packages/uprm-core[all]" $(addprefix -e ,$(filter-out packages/uprm-core,$(PACKAGES)))
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/uprm demo

# before the environment is built, so a missing package stops `make test` at once
system-packages:
	@scripts/system-packages.sh

# the suite on both cores: pytest-xdist, a test file per worker (its module fixtures stay
# in one process); TEST_WORKERS=0 runs it in this process alone
TEST_WORKERS ?= 2

test: system-packages $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	@for f in benchmarks/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache

# make docs  — the documentation site into $(SITE)/ (open $(SITE)/index.html), offline, warnings as errors
# make dist  — an sdist and a wheel of each distribution into $(DIST)/, checked (twine check, contents)
SITE ?= site
DIST ?= dist

.PHONY: docs dist

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --clean --site-dir $(SITE)

dist: $(STAMP)
	$(PY) scripts/dist.py --out $(DIST) $(PACKAGES)
