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

# Generate two ShapesWorld 2 scenes labelled with its 59-class benchmark (things and stuff, as Pascal
# Context) and segment them with the embedded default model (ovss-tiny, shapesworld2 weights). A rerun
# replaces the demo's own earlier results (--overwrite: only files an ovss job wrote; `world make`
# resumes by itself). The scenes go to $(OUT)/sw2: a demo folder of the 19-class ShapesWorld, from
# before ShapesWorld 2 was the default, stays as it is.
demo: setup
	$(VENV)/bin/ovss world make --benchmark sw2-59 --out $(OUT)/sw2 --n 2 --seed 7
	$(VENV)/bin/ovss segment $(OUT)/sw2/images/val --classes-file $(OUT)/sw2/classes.txt --out $(OUT)/segment --overwrite
	@echo "overlays: $(OUT)/segment/*_overlay.png"

test: $(TEST_STAMP)
	$(PY) -m pytest

bench: setup
	$(PY) benchmarks/run.py

clean:
	rm -rf $(OUT) .pytest_cache
