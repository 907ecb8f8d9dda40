# Two commands do everything on a fresh machine:
#   make book   creates/updates .venv, executes every chapter on the embedded default, renders HTML
#   make test   creates/updates .venv, runs unit tests, every chapter (nbval) and the book build
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export TQDM_DISABLE ?= 1
export PYTHONHASHSEED ?= 0

# Debian packages the tests use: WordNet 3.0 (ImageNet class affinities) and Chromium (screenshots
# of the rendered book). Installed when missing and running as root with apt-get; otherwise the
# tests that need them are reported as skipped.
SYSTEM_PACKAGES := wordnet-base chromium

SWEEP ?= configs/sweeps/side-by-side.yaml
ENGINE ?= local
SWEEP_ARGS ?=

.PHONY: env sysdeps texdeps book pdf test unit chapter sweep scale scale-cpu bench clean-cache clean help

help:
	@echo "make book   - set up .venv, execute all chapters, render _build/html"
	@echo "make pdf    - the book as a PDF, _build/latex/advinterp-book.pdf (installs Debian's TeX when missing;"
	@echo "              reuses make book's executed chapters)"
	@echo "make test   - set up .venv, run every test (unit, chapters, book build) in two phases on both cores"
	@echo "make unit   - unit tests only (fast)"
	@echo "make chapter CH=4 [CONFIG=configs/cifar10-cpu.yaml] [DATA_ROOT=/abs/path] [SET='eps=0.2 seed=1']"
	@echo "              - one chapter, given only the parameters it declares, into runs/<config>/"
	@echo "make sweep  - run the sweep SWEEP=$(SWEEP) (resumable) and collect its table;"
	@echo "              ENGINE=ray SWEEP_ARGS='--gpus-per-run 1' runs it on Ray (README: Sweeps on Ray)"
	@echo "make scale  - the scale study on GPUs: every chapter on CIFAR-10, three seeds, on Ray, recorded"
	@echo "              into book/recorded/$(SCALE_RUN) (DATA_ROOT=/abs/path/to/cifar10-jpg)"
	@echo "make scale-cpu - the CPU tier: chapters 1-7 on CIFAR-10 with small networks, three seeds, in stretches"
	@echo "              of HOURS=2, each (chapter, seed) run recorded into book/recorded/cpu-cifar10 (its cost: the appendix)"
	@echo "make bench  - performance benchmarks on this machine (< 5 min on 2 cores)"

# The environment is rebuilt only when requirements.txt or pyproject.toml change. --no-compile: pip would
# byte-compile all ~18,000 modules it installs (about 28 s of CPU here); Python compiles the ~2,000 a
# chapter imports on first use and keeps them.
env: $(STAMP)
$(STAMP): requirements.txt tests/requirements-oracles.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-compile --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-compile --disable-pip-version-check --no-deps -r tests/requirements-oracles.txt
	$(BIN)/python -m pip install --quiet --no-compile --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# Jupyter Book caches executed notebooks by their code only; a changed library must re-execute them.
book: $(STAMP)
	@v=$$($(BIN)/python -c "from advinterp.core.cache import library_version; print(library_version())"); \
	if [ "$$(cat _build/.library_version 2>/dev/null)" != "$$v" ]; then rm -rf _build/.jupyter_cache; fi; \
	$(BIN)/jupyter-book build . -W --keep-going && echo "$$v" > _build/.library_version
	@echo "open _build/html/index.html"

# The PDF: Jupyter Book's LaTeX builder with XeLaTeX, from Debian's TeX packages (installed when
# missing, as root with apt-get). Chapters come from the same execution cache as `make book`.
TEX_PACKAGES := texlive-xetex texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended latexmk \
	fonts-freefont-otf lmodern poppler-utils
texdeps:
	@missing=""; for p in $(TEX_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else echo "make pdf needs Debian's packages$$missing (root + apt-get to install them)"; exit 2; fi

pdf: $(STAMP) texdeps
	@v=$$($(BIN)/python -c "from advinterp.core.cache import library_version; print(library_version())"); \
	if [ "$$(cat _build/.library_version 2>/dev/null)" != "$$v" ]; then rm -rf _build/.jupyter_cache; fi; \
	$(BIN)/jupyter-book build . --builder pdflatex -W --keep-going && echo "$$v" > _build/.library_version
	@ls -l _build/latex/advinterp-book.pdf
	@log=_build/latex/advinterp-book.log; \
	echo "$$(pdfinfo _build/latex/advinterp-book.pdf | awk '/^Pages:/ {print $$2}') pages;" \
	  "LaTeX warnings: $$(grep -c 'Warning' $$log), overfull boxes: $$(grep -c '^Overfull' $$log)" \
	  "(widest $$(grep -o '^Overfull \\hbox ([0-9.]*pt' $$log | grep -o '[0-9.]*' | sort -n | tail -1)pt; log: $$log)"

sysdeps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else echo "NOTE: system packages$$missing are missing (root + apt-get needed); tests that need them are skipped"; fi

# make test runs pyproject's testpaths in two phases (README: The two commands), on both cores:
#  1. unit tests, chapters 1-7 and the configuration dry runs on two pytest-xdist workers with one
#     thread each: the single-threaded parts (kernel starts, imports, Ray, papermill, plotting) overlap
#     instead of idling a core. tests/nbexec.py keeps chapter 4 and the chapters that reuse its models
#     (7, the other long one, and 5) on one worker, one after another: side by side they took 592 s
#     and 708 s, one after another (beside the other chapters and the unit tests) 525 s and 614 s,
#     on fresh clones half an hour apart (this machine's speed varies by up to 1.7 times over a day);
#  2. what reads every chapter's results (chapter 8, the introduction's scorecard) and the book's
#     builds (HTML and PDF side by side), in one process with both threads, rendering the chapters
#     phase 1 executed (written to ADVINTERP_EXECUTED_DIR) instead of executing them again.
# A plain `pytest` runs the same tests one after another. Exit status 5 ("no tests collected") is not
# a failure; the second phase runs even when the first fails, and either failing fails make test.
PHASE2 := book/08-side-by-side.ipynb book/intro.ipynb tests/book
PHASE1_ARGS := tests/unit book tests/book/test_configs.py --ignore=book/08-side-by-side.ipynb --ignore=book/intro.ipynb \
	-n 2 --dist loadgroup --no-loadscope-reorder
test: $(STAMP) sysdeps
	@executed=$$(mktemp -d); trap 'rm -rf "$$executed"' EXIT; export ADVINTERP_EXECUTED_DIR=$$executed; \
	echo "== make test, phase 1 of 2: unit tests, chapters 1-7, configurations (two workers) =="; \
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest $(PHASE1_ARGS); one=$$?; \
	echo "== make test, phase 2 of 2: chapter 8, the introduction, the book's builds =="; \
	$(BIN)/python -m pytest $(PHASE2) --ignore=tests/book/test_configs.py; two=$$?; \
	for rc in $$one $$two; do if [ $$rc -ne 0 ] && [ $$rc -ne 5 ]; then echo "make test failed (phase exit codes: $$one, $$two)"; exit $$rc; fi; done

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

# One chapter with papermill, passed only the parameters it declares (a tier's configuration is book-wide).
CH ?=
CONFIG ?=
SET ?=
chapter: $(STAMP)
	@test -n "$(CH)" || { echo "make chapter needs CH=<number>, e.g. make chapter CH=4 CONFIG=configs/cifar10-cpu.yaml DATA_ROOT=/abs/path/to/cifar10-jpg"; exit 2; }
	$(BIN)/python -m advinterp.chapter $(CH) $(if $(CONFIG),-f $(CONFIG)) $(if $(DATA_ROOT),--set data_root=$(DATA_ROOT)) $(SET:%=--set %)

sweep: $(STAMP)
	$(BIN)/python -m advinterp.sweep $(SWEEP) --engine $(ENGINE) $(SWEEP_ARGS)

# The scale study (configs/sweeps/scale-cifar10.yaml): one Ray task per chapter and seed, one GPU each;
# the results land in book/recorded/$(SCALE_RUN) and every chapter's "At scale" section shows them.
DATA_ROOT ?=
SCALE_RUN ?= gpu-cifar10
SCALE_ARGS ?= --gpus-per-run 1 --cpus-per-run 4
scale: $(STAMP)
	@test -n "$(DATA_ROOT)" || { echo "make scale needs DATA_ROOT=/abs/path/to/cifar10-jpg (ImageFolder: train/, test/)"; exit 2; }
	$(BIN)/python -m advinterp.sweep configs/sweeps/scale-cifar10.yaml --engine ray $(SCALE_ARGS) \
	    --set data_root=$(DATA_ROOT) --record $(SCALE_RUN) --tier gpu

# The CPU tier (configs/sweeps/cpu-cifar10.yaml): chapters 1-7 on real CIFAR-10 with small networks, three
# seeds, recorded in stretches (python -m advinterp.tier): one run per (chapter, seed), seed by seed, each
# recorded into book/recorded/cpu-cifar10/runs/ as it finishes (commit them), only the runs missing or made
# by code with another measurement fingerprint, stopping before a run that would not fit in HOURS. A fresh
# clone continues from the committed runs; the model cache lives outside the work tree.
CPU_CACHE ?= $(HOME)/.cache/advinterp
HOURS ?= 2
scale-cpu: $(STAMP)
	@test -n "$(DATA_ROOT)" || { echo "make scale-cpu needs DATA_ROOT=/abs/path/to/cifar10-jpg (ImageFolder: train/, test/)"; exit 2; }
	ADVINTERP_CACHE=$(CPU_CACHE) $(BIN)/python -m advinterp.tier configs/sweeps/cpu-cifar10.yaml \
	    --record cpu-cifar10 --tier cpu --hours $(HOURS) --set data_root=$(DATA_ROOT)

bench: $(STAMP)
	$(BIN)/python -m advinterp.bench

clean-cache:
	rm -rf data/cache

clean:
	rm -rf _build results .pytest_cache
