# The README's two commands: `make lab` and `make test`; `make test-pythons` for every supported Python.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LESSON ?= notebooks/00_start_here.ipynb

.PHONY: lab test test-pythons check bench lint clean

# JupyterLab refuses to run as root unless told; containers and classroom VMs often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: $(VENV)/.installed
	$(BIN)/jupyter lab $(ROOT_FLAG) $(LESSON)

test: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The suite without the browser tests on Python 3.10, 3.11, 3.12 and 3.13 (those this machine has:
# pyenv's or pythonX.Y on PATH), then on the oldest Python at the oldest dependency versions
# pyproject.toml declares (.ci/constraints-oldest.txt). Virtual environments in .venvs/, reused while
# pyproject.toml is unchanged. PYTHONS="3.12 3.13" runs only those; OLDEST_PYTHON=none skips the oldest run.
test-pythons:
	bash .ci/test-pythons

# The acceptance check of the numbers against R (lme4, lmerTest, afex).
check: $(VENV)/.installed
	$(BIN)/python ../shared/reference/check.py --cmd "$(BIN)/lmm-teach"

bench: $(VENV)/.installed
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

lint: $(VENV)/.installed
	$(BIN)/ruff check lmm_teach tests benchmarks

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

clean:
	rm -rf $(VENV) .venvs build *.egg-info .pytest_cache
