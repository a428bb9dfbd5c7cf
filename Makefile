# Arkiv's developer entry points. On a fresh machine:
#   make demo   sets up what is missing and runs the main job end to end
#   make test   sets up what is missing and runs every test, then the lints
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Machine-wide state outside the repository: Garage's data, generated keys
# and the cargo target directory every checkout shares.
ARKIV_STATE ?= $(HOME)/.arkiv-dev
export ARKIV_STATE
export CARGO_TARGET_DIR ?= $(ARKIV_STATE)/target
export PATH := $(HOME)/.cargo/bin:$(PATH)
CARGO ?= cargo

.PHONY: help setup build test test-only lint fmt up down status demo bench

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: ## Install and start PostgreSQL, RabbitMQ and Garage on loopback; write .run/arkiv.toml
	@deploy/local/setup.sh

build: ## Build every crate, test and binary
	$(CARGO) build --workspace --all-targets

test: setup build ## Set up, build, run every test, then the lints
	@$(MAKE) --no-print-directory test-only
	@$(MAKE) --no-print-directory lint

test-only: ## Run every test (servers must be up: make setup)
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --no-fail-fast; \
	else \
		$(CARGO) test --workspace --no-fail-fast; \
	fi
	$(CARGO) test --workspace --doc

lint: ## cargo fmt --check and clippy with warnings denied
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

up: setup build ## Start every service and the simulator in the background (.run/)
	@deploy/local/services.sh up

status: ## Show each service's health; non-zero if any is down
	@deploy/local/services.sh status

down: ## Stop the services started by make up
	@deploy/local/services.sh down

demo: up ## Set up, start everything and run the main job on the simulator
	@deploy/local/demo.sh

bench: setup ## Benchmarks on the local servers (release build); prints BENCH lines
	$(CARGO) build --release -p arkiv-api -p arkiv-worker -p arkiv-connector-m365 -p arkiv-connector-google -p arkiv-cloud-sim -p arkiv-tests --bins
	$(CARGO_TARGET_DIR)/release/arkiv-bench
