# Development tasks of the cloudnative-go template. `make help` lists them.
# Every target that needs tools runs `setup` first, so a fresh machine needs
# nothing but Go, Python 3.11 and root (or sudo) for the Debian packages.

SHELL := /bin/bash
.DEFAULT_GOAL := help

export PATH := $(CURDIR)/.venv/bin:$(CURDIR)/.tools/bin:$(PATH)
export CHECKOV := $(CURDIR)/.venv-checkov/bin/checkov
export GOTOOLCHAIN ?= local

PYTHON_SOURCES := hooks tests scripts
PYTEST_ARGS ?=

.PHONY: help
help: ## List the targets with what each does.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) \
		| awk 'BEGIN {FS = ":.*## "} {printf "  %-12s %s\n", $$1, $$2}'

.PHONY: setup
setup: ## Install Debian packages, Python venvs and Go tools the tests need.
	@scripts/setup.sh

.PHONY: demo
demo: setup ## Bake the default service, build it, run it and process one job.
	python scripts/demo.py

.PHONY: lint
lint: setup ## Check the template's own Python with ruff.
	ruff check $(PYTHON_SOURCES)
	ruff format --check $(PYTHON_SOURCES)

.PHONY: test
test: lint ## Run the whole test suite, image builds and fault runs included.
	pytest $(PYTEST_ARGS)

.PHONY: test-fast
test-fast: setup ## Run the tests that need no Go build, image build or fault run.
	pytest -m "not go and not image and not fault and not slow" $(PYTEST_ARGS)

.PHONY: bench
bench: setup ## Measure the baked service and print the benchmark table.
	python scripts/bench.py

.PHONY: bench-images
bench-images: setup ## Measure the production images: size, start to ready, build times.
	python scripts/bench_images.py --write

.PHONY: backstage
backstage: setup ## Regenerate backstage/template.yaml from the template's answers.
	python scripts/render_backstage.py

.PHONY: clean
clean: ## Remove the venvs, built tools and test caches.
	rm -rf .venv .venv-checkov .tools .pytest_cache .ruff_cache
