# The README's two commands: `make lab` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LESSON ?= notebooks/00_start_here.ipynb

.PHONY: lab test check bench lint clean

# JupyterLab refuses to run as root unless told; containers and classroom VMs often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: $(VENV)/.installed
	$(BIN)/jupyter lab $(ROOT_FLAG) $(LESSON)

test: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

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
	rm -rf $(VENV) build *.egg-info .pytest_cache
