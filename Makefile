# `make repro` and `make test` both build the environment first; nothing else needs installing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# the page `dvc plots show` draws into, its scripts inlined so that it needs no network (pipeline/plots_page.py)
PLOTS_PAGE := .dvc/plots/offline.html

.PHONY: setup repro test bench clean

setup: $(STAMP) $(PLOTS_PAGE)

$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

$(PLOTS_PAGE): $(STAMP) pipeline/plots_page.py
	$(BIN)/python -m pipeline.plots_page $@

repro: $(STAMP) $(PLOTS_PAGE)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

# pytest runs one worker per core (pytest-xdist), a test file whole on one worker, so the end-to-end DVC files
# overlap the unit tests; one torch thread per process, or the workers' thread pools fight over the cores
# (on 2 cores: 313 s against 487 s one after the other; with torch's default threads it was slower than that).
test: $(STAMP) $(PLOTS_PAGE)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PATH="$(abspath $(BIN)):$$PATH" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -n auto --dist loadfile

bench: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python bench/train_throughput.py
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python bench/prepare_memory.py

clean:
	rm -rf $(VENV)
