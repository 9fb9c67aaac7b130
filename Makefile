# zslab: the two README commands.
#   make demo   -> virtualenv + install + the quickstart notebook on the embedded dataset (runs/quickstart/)
#   make test   -> virtualenv + dev install + the docs site (strict) + the whole test suite, notebooks included (nbval)
#   make docs   -> the documentation site in site/ (DOCS_OUT=dir for another folder); serve: .venv/bin/mkdocs serve
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
PRESET ?= smoke
DOCS_OUT ?= site
# mkdocs build --strict: a warning (broken link, docstring the API pages cannot render) fails;
# NO_MKDOCS_2_WARNING silences mkdocs-material's end-of-life banner
MKDOCS  = NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet -d $(DOCS_OUT)

.PHONY: demo test docs install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[dev]'
	# torchattacks is only a test-time peer for cross-checks; it pins an old `requests`
	$(BIN)/pip install -q --no-deps torchattacks==3.5.1
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 > /dev/null
	mkdir -p runs/quickstart
	$(BIN)/papermill notebooks/00_quickstart.ipynb runs/quickstart/00_quickstart.ipynb \
	    -p preset $(PRESET) -p out_dir runs/quickstart --cwd .
	@echo "figures and results: runs/quickstart/"

docs: $(VENV)/.installed-dev
	$(MKDOCS)
	@echo "documentation: $(DOCS_OUT)/index.html"

test: $(VENV)/.installed-dev
	$(MKDOCS)
	MPLBACKEND=Agg $(BIN)/python -m pytest -q --durations=25 --nbval-lax --nbval-current-env tests notebooks

clean:
	rm -rf $(VENV) runs .pytest_cache site
