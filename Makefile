# nav_policy developer entry points. Each target creates .venv and installs on first use;
# the install re-runs when setup.py changes (stamp file inside the venv).
#
#   make demo    end-to-end demo, headless (sim + ROS nodes + instruction)
#   make test    the pytest suite (what CI runs)
#   make test-fast  the suite without DDS, end-to-end and slow tests
#   make bench   speed benchmarks (see docs/BENCHMARKS.md)
#   make lint    ruff, and the package layers (import-linter contracts in .importlinter)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp-install
# torch first and pinned: an unpinned torch (or one pulled in by another package) would fetch a
# multi-GB CUDA build; 2.13.0 resolves to the CPU build available locally.
TORCH ?= torch==2.13.0
EXTRAS ?= ros,dev,dist
# an explicit rule set, so `make lint` means the same whatever ruff's defaults are
RUFF_RULES ?= E4,E7,E9,F,I,B,UP

.PHONY: all demo test test-fast test-experiments bench lint venv clean-venv

all: test

venv: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): setup.py | $(PY)
	$(PY) -m pip install '$(TORCH)'
	$(PY) -m pip install -e '.[$(EXTRAS)]'
	@# the ros extra: build tf2_msgs and Nav2's actions into the venv (skipped when they import)
	case ',$(EXTRAS),' in *,ros,*) $(PY) -m nav_policy.ros.build_interfaces ;; esac
	touch $@

demo: $(STAMP)
	$(VENV)/bin/nav-policy demo --headless

# every test process talks ROS on this machine only (test/conftest.py also gives each its own
# ROS_DOMAIN_ID)
test: export ROS_AUTOMATIC_DISCOVERY_RANGE = LOCALHOST
test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider test/

# a developer's loop: everything but the DDS, end-to-end and slow tests (a few minutes)
test-fast: export ROS_AUTOMATIC_DISCOVERY_RANGE = LOCALHOST
test-fast: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m "not ros and not e2e and not slow" test/

bench: $(STAMP)
	$(PY) -m nav_policy.bench.speed

lint: $(STAMP)
	$(VENV)/bin/ruff check --select $(RUFF_RULES) --ignore B905 --extend-per-file-ignores "test/test_ros_*.py:E402" nav_policy test
	$(VENV)/bin/lint-imports

clean-venv:
	rm -rf $(VENV)

# the research scripts' own tests (experiments/ is not installed and not part of `make test`)
test-experiments: export ROS_AUTOMATIC_DISCOVERY_RANGE = LOCALHOST
test-experiments: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider experiments/
