# lrtheory: two commands from a fresh clone.
#   make book   venv + install, re-execute every chapter, build the HTML book into _build/html
#   make test   venv + install, unit tests, nbval over every chapter, book build (warnings = errors)
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NB     ?= chapters/*.ipynb

# One BLAS/OpenMP thread everywhere: the same reduction order when notebooks are executed
# and when nbval re-runs them, and no oversubscription on small machines.
export OMP_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
export OPENBLAS_NUM_THREADS := 1

.PHONY: help install notebooks book book-build test test-unit test-nbval test-nbval-kernel test-nbval-matrix test-reference test-browser verify mutation clean

help:
	@echo "make book          install, execute the chapters, build _build/html"
	@echo "make test          install, unit tests, nbval on every chapter, strict book build"
	@echo "make notebooks     re-execute chapters in place (NB=chapters/05_balancing.ipynb for one)"
	@echo "make verify        lrtheory verify --scale ci"
	@echo "make test-nbval-kernel  nbval under ATEN_CPU_CAPABILITY=avx2 (another CPU kernel)"
	@echo "make test-nbval-matrix  nbval RUNS=3 times each under avx2, default kernels and 2 threads; slow"
	@echo "make test-reference  reference runs complete, passing, a sample recomputed"
	@echo "make test-browser  build, serve and check every page in headless Chromium"
	@echo "make mutation      mutation testing (mutmut), one module at a time (MODULES=lrtheory/core/stats.py); slow"

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned: the CPU build that installs from local disk, never a CUDA download
	$(PY) -m pip install --quiet -c constraints.txt torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,book,data]'
	# build matplotlib's font cache now, so no first-import message reaches a notebook's stderr
	MPLBACKEND=Agg $(PY) -c "import matplotlib.pyplot"
	touch $(STAMP)

install: $(STAMP)

notebooks: $(STAMP)
	$(PY) scripts/execute_notebooks.py $(NB)

# The build never executes code (execute_notebooks: "off"): it renders the committed,
# nbval-checked outputs. `make book` re-executes them first.
book-build: $(STAMP)
	$(VENV)/bin/jupyter-book build . --builder html -W -n --keep-going

book: notebooks book-build
	@echo "book: open _build/html/index.html"

test-unit: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile tests
	# every docstring example of the library runs (numpydoc "Example" sections)
	$(PY) -m pytest -q -p no:cacheprovider --doctest-modules lrtheory

test-nbval: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --nbval-lax --nbval-current-env $(NB)

# nbval again under another CPU kernel (AVX2 code paths, as on most laptops): a checked output
# that depends on the machine cannot land.
test-nbval-kernel: $(STAMP)
	ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 $(PY) -m pytest -q -p no:cacheprovider -n 2 \
	  --dist loadfile --nbval-lax --nbval-current-env $(NB)

# issue 20's portability matrix: nbval RUNS times in a row under each setting a user's machine
# may have (AVX2 kernels, baseline kernels, two OpenMP threads). Not in CI (about 9 nbval runs).
# Each setting is name:workers:variables; with two threads per kernel one xdist worker, so that
# the threads do not outnumber two cores (OpenMP's barriers then wait for descheduled threads).
RUNS ?= 3
NBVAL_SETTINGS := avx2:2:ATEN_CPU_CAPABILITY=avx2,MKL_ENABLE_INSTRUCTIONS=AVX2 \
                  default:2:ATEN_CPU_CAPABILITY=default \
                  threads2:0:OMP_NUM_THREADS=2,MKL_NUM_THREADS=2
test-nbval-matrix: $(STAMP)
	@for setting in $(NBVAL_SETTINGS); do \
	  name=$${setting%%:*}; rest=$${setting#*:}; workers=$${rest%%:*}; vars=$$(echo $${rest#*:} | tr , ' '); \
	  for run in $$(seq $(RUNS)); do \
	    echo "== nbval [$$name] run $$run/$(RUNS): $$vars, $$workers xdist workers"; \
	    env $$vars $(PY) -m pytest -q -p no:cacheprovider -n $$workers --dist loadfile \
	      --nbval-lax --nbval-current-env $(NB) | tail -3; \
	  done; \
	done

# the committed reference runs: complete, passing, and a random sample of cheap points recomputed
test-reference: $(STAMP)
	$(PY) scripts/check_reference.py

test: test-unit test-nbval book-build

verify: $(STAMP)
	$(VENV)/bin/lrtheory verify --scale ci

test-browser: book-build
	bash scripts/install_chromium.sh
	$(PY) -m pytest -q -p no:cacheprovider -m browser tests/test_browser_check.py
	$(PY) scripts/browser_check.py _build/html --screenshots _build/screenshots

# Mutation testing (issue 21): each module of [tool.mutmut.modules] in pyproject.toml mutated in a
# scratch copy against its own test files; scores and surviving mutants printed. Not part of CI.
MODULES ?=
mutation: $(STAMP)
	test -x $(VENV)/bin/mutmut || $(PY) -m pip install --quiet -c constraints.txt -e '.[mutation]'
	$(PY) scripts/mutation.py $(MODULES)

clean:
	rm -rf _build .pytest_cache
