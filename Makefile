# Every target sets itself up first (scripts/setup.sh is idempotent), so `make demo` and `make test`
# work on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
SIZEUP := $(VENV)/bin/sizeup
DEMO_DB ?= sqlite:///demo.db
DEMO_TASKS ?= prime,fibonacci,factorial,palindrome,gcd,sort

.PHONY: setup demo test bench lint clean

setup:
	./scripts/setup.sh

# bubblewrap isolates the candidates (the default sandbox); without it the run says it is not isolated.
demo: setup
	./scripts/system_packages.sh bubblewrap
	$(SIZEUP) run --db $(DEMO_DB) --task-type $(DEMO_TASKS) --large-model gemma3:270m \
		--small-model smollm2:135m --max-depth 2 --max-tokens 256

# Installs and starts what the suite needs (bubblewrap, GNU time, FerretDB, Ollama, podman's service): see
# scripts/test.sh. Builds are cached in ~/.cache/sizeup, so a second clone's run is quick.
test: setup
	./scripts/test.sh $(PYTEST_ARGS)

# EvalPlus is a peer measured beside sizeup; only its executor is used, so its heavy extras are not needed.
bench: setup
	$(PY) -m pip install -q --no-deps evalplus==0.3.1
	$(PY) benchmarks/sandbox_bench.py
	$(PY) benchmarks/inference_bench.py
	$(PY) benchmarks/scale_bench.py --json
	if [ -n "$$DOCKER_HOST" ]; then $(PY) benchmarks/docker_bench.py; \
	else echo "bench: DOCKER_HOST unset, docker backend skipped (eval \"\$$(scripts/podman_service.sh start)\")"; fi

lint: setup
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks
	$(PY) -m mypy

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache demo.db sizeup.db
