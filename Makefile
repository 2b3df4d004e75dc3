SHELL := /bin/bash
# aiodimse developer entry points. `make test` and `make demo` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
FUZZ_SECONDS ?= 60
STAMP  := $(VENV)/.installed

.PHONY: test lint typecheck layers fuzz pytest pytest-proactor-like demo docs bench bench-quick bench-micro peers venv clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,docs,bench]'
	touch $(STAMP)

venv: $(STAMP)

peers:
	bash scripts/install-peers.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests fuzz benchmarks
	$(BIN)/ruff format --check src

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

layers: $(STAMP)
	$(BIN)/lint-imports

# Each harness runs FUZZ_SECONDS under atheris, seeded from fuzz/corpus/<name>.
fuzz: $(STAMP)
	@for h in pdu acceptor reassembly; do \
	  echo "== fuzz_$$h ($(FUZZ_SECONDS) s)"; \
	  mkdir -p /tmp/aiodimse-fuzz-$$h && cp -r fuzz/corpus/$$h/. /tmp/aiodimse-fuzz-$$h/ ; \
	  $(PY) fuzz/fuzz_$$h.py -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    /tmp/aiodimse-fuzz-$$h 2>&1 | grep -E 'stat::number_of_executed_units|stat::average_exec_per_sec|ERROR|Traceback|Error' ; \
	  test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

pytest: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

# The connection paths of loops that cannot watch sockets (Windows' proactor), on Linux:
# every loop refuses add_reader/add_writer (tests/support/loops.py).
pytest-proactor-like: $(STAMP)
	AIODIMSE_TEST_LOOP=no-fd-callbacks $(PY) -m pytest -q -p no:cacheprovider \
	  tests/net tests/storage tests/interop/test_echo_interop.py \
	  tests/interop/test_store_into_aiodimse.py tests/interop/test_store_from_aiodimse.py

test: $(STAMP) peers lint typecheck layers fuzz pytest pytest-proactor-like

demo: $(STAMP)
	$(PY) -m aiodimse.apps demo

docs: $(STAMP)
	$(PY) docs/gen_state_diagram.py
	$(BIN)/mkdocs build --strict

# The issue-9 suite, every implementation side by side in one run (< 25 min on 2 cores):
# benchmarks/results/latest.{md,json,png} and a PASS/MISS line per target.
bench: $(STAMP)
	$(PY) benchmarks/suite.py
	$(PY) benchmarks/bench_transcode_send.py --repeat 1

# The same cases with one repetition and small counts (< 3 min): a smoke run.
bench-quick: $(STAMP)
	$(PY) benchmarks/suite.py --quick

# Codec micro-benchmarks (no peers).
bench-micro: $(STAMP)
	$(PY) benchmarks/bench_pdu.py
	$(PY) benchmarks/bench_command_codec.py
	$(PY) benchmarks/bench_fragment.py

clean:
	rm -rf $(VENV) site build *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
