# Firmsync: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash

# Extra pytest arguments for `make test`, e.g. make test PYTEST_ARGS="-k login -x"
PYTEST_ARGS ?=
export PYTEST_ARGS

.PHONY: run test bench soak clean

## run: install what is missing, migrate, seed the demo firm, start web, worker, cron, redis and sandbox
run:
	bash scripts/run.sh

## test: the whole suite on SQLite, then on a throwaway PostgreSQL (own Redis too)
test:
	bash scripts/test.sh

## bench: the benchmark harness (results in docs/benchmarks.md)
bench:
	.venv/bin/python -m benchmarks

## soak: two nights of 1,000 files on gunicorn, RQ workers, PostgreSQL and Redis while 20 people browse (docs/soak.md)
soak:
	.venv/bin/python -m benchmarks.soak

## clean: remove instance/ (local database, keys, Redis data) and caches
clean:
	rm -rf instance .pytest_cache build *.egg-info test-artifacts
	find . -path ./.venv -prune -o -type d -name __pycache__ -exec rm -rf {} +
