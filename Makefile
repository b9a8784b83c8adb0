# ovss: every job is one command. Each target creates .venv when it is missing.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ovss-installed
OUT ?= demo_out

.PHONY: setup demo test bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

setup: $(STAMP)

# The tests also need the page's extra (gradio); `make demo` and `make bench` do not.
TEST_STAMP := $(VENV)/.ovss-test-installed
$(TEST_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,app]'
	@touch $(TEST_STAMP)

# Generate a ShapesWorld scene and segment it with the embedded default model. A rerun replaces the
# demo's own earlier results (--overwrite: only files an ovss job wrote; `world make` resumes by itself).
demo: setup
	$(VENV)/bin/ovss world make --out $(OUT)/world --n 2 --seed 7
	$(VENV)/bin/ovss segment $(OUT)/world/images/val --classes-file $(OUT)/world/classes.txt --out $(OUT)/segment --overwrite
	@echo "overlays: $(OUT)/segment/*_overlay.png"

test: $(TEST_STAMP)
	$(PY) -m pytest

bench: setup
	$(PY) benchmarks/run.py

clean:
	rm -rf $(OUT) .pytest_cache
