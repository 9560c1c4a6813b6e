# The README's two commands: `make lab` and `make test`; `make test-pythons` for every supported Python.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LESSON ?= notebooks/00_start_here.ipynb

.PHONY: lab test test-pythons check bench lint clean app lite binder-check

# JupyterLab refuses to run as root unless told; containers and classroom VMs often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: $(VENV)/.installed-lab
	$(BIN)/jupyter lab $(ROOT_FLAG) $(LESSON)

# The Explorer as a web page without code (Voila), for a class: open http://$(APP_IP):$(APP_PORT)/.
# APP_IP=0.0.0.0 to serve other machines; limits per page: LMM_TEACH_MAX_SUBJECTS, _MAX_VISITS,
# _MAX_REPS, _STUDY_WORKERS, _MAX_ROWS (README, "The app link").  Idle pages' kernels end after 30 min.
# The page template (app/jupyter/voila/templates/lmm-teach) loads nothing from a CDN; the page loads only
# Voila's widget manager and the front-end extensions of ipywidgets and jupyter_bokeh (others in the venv, e.g. Notebook 7's, fail in Voila).
APP_IP ?= 127.0.0.1
APP_PORT ?= 8866
app: $(VENV)/.installed-app
	JUPYTER_PATH=$(CURDIR)/app/jupyter $(BIN)/voila app/explorer.ipynb --template=lmm-teach --no-browser --Voila.ip=$(APP_IP) --port=$(APP_PORT) \
		--MappingKernelManager.cull_idle_timeout=1800 --MappingKernelManager.cull_interval=120 \
		--MappingKernelManager.cull_connected=False \
		--VoilaConfiguration.extension_allowlist="['@voila-dashboards/widgets-manager8', '@jupyter-widgets/jupyterlab-manager', '@bokeh/jupyter_bokeh']"

# Two pytest processes (pytest-xdist), each test file whole on one of them (a browser test file keeps
# its page; each process that runs browser tests starts its own JupyterLab and Chromium).
# TEST_JOBS=0 runs everything in this one process.
TEST_JOBS ?= 2
test: $(VENV)/.installed
	$(BIN)/python -m pytest $(if $(filter 0,$(TEST_JOBS)),,-n $(TEST_JOBS) --dist loadfile) $(PYTEST_ARGS)

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

# One extra into the same .venv (`make lab` needs only JupyterLab and Notebook, not the test tools).
$(VENV)/.installed-%: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$*]"
	touch $@

# A JupyterLite site in $(LITE_DIR)/: the lessons, the lmm_teach wheel (for %pip install lmm-teach in the
# browser) and the front-end extensions of ipywidgets and jupyter_bokeh.  Built offline in its own venv
# (.venv-lite: the Pyodide kernel's JupyterLab extension must stay out of .venv's JupyterLab and Voila).
# Pyodide itself is not in the site: the learner's browser fetches it from Pyodide's CDN (README).
LITE_DIR ?= lite-site
LITE_VENV ?= .venv-lite
lite: $(LITE_VENV)/.installed
	rm -rf .lite-build $(LITE_DIR)
	$(LITE_VENV)/bin/python -m pip wheel --quiet --no-deps -w .lite-build/wheels .
	mkdir -p .lite-build/contents
	cp -r notebooks/. .lite-build/contents/
	cd .lite-build && ../$(LITE_VENV)/bin/jupyter lite build --contents contents \
		--piplite-wheels wheels/lmm_teach-*.whl --output-dir $(CURDIR)/$(LITE_DIR)
	@echo "JupyterLite site in $(LITE_DIR)/: serve it with any static web server, e.g." \
		"$(LITE_VENV)/bin/python -m http.server -d $(LITE_DIR)"

$(LITE_VENV)/.installed: pyproject.toml
	test -x $(LITE_VENV)/bin/python || $(PYTHON) -m venv $(LITE_VENV)
	$(LITE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LITE_VENV)/bin/python -m pip install --quiet ".[lite]"
	touch $@

# Binder's environment, verified: a fresh venv built as repo2docker builds the image (pip install -r
# binder/requirements.txt from the repository folder, then binder/postBuild with a throw-away HOME),
# then every lesson and the app notebook run with nbclient.  Slow (a full install): not part of `make test`.
BINDER_VENV ?= .venv-binder
binder-check:
	rm -rf $(BINDER_VENV) .binder-home
	$(PYTHON) -m venv $(BINDER_VENV)
	$(BINDER_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BINDER_VENV)/bin/python -m pip install --quiet -r binder/requirements.txt
	mkdir -p .binder-home
	HOME=$(CURDIR)/.binder-home PATH=$(CURDIR)/$(BINDER_VENV)/bin:$$PATH bash binder/postBuild
	HOME=$(CURDIR)/.binder-home PATH=$(CURDIR)/$(BINDER_VENV)/bin:$$PATH JUPYTER_PREFER_ENV_PATH=1 \
		$(BINDER_VENV)/bin/python binder/check_lessons.py

clean:
	rm -rf $(VENV) .venvs $(BINDER_VENV) .binder-home $(LITE_VENV) .lite-build $(LITE_DIR) build *.egg-info .pytest_cache
