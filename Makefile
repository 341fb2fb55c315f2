# The two commands of README.md, and the benchmark.
.PHONY: demo test bench deps

# Build and start the appliance on its embedded defaults (./nexus-data, HTTPS on 8443,
# HTTP redirect on 8080, a demo company). Prints the URL and the one-time setup link.
# Installs what llama.cpp's build needs (cmake, clang) and puts the embedding model of
# search by meaning into nexus-data/models/.
demo:
	scripts/install-build-deps.sh
	scripts/install-embedding-model.sh nexus-data/models
	cargo run --release -p nexus -- demo

# The whole test suite: installs what the build and the tests need (cmake and clang for
# llama.cpp, Chromium, playwright-core, beancount in a venv, the embedding model), then
# unit tests, the HTTPS integration tests, the SIGKILL
# crash test and the browser test. The integration suite boots on a clock it sets
# (1 December by default) and runs again on 31 December and on 29 February.
test: deps
	cargo test --workspace --locked
	NEXUS_TEST_TODAY=2027-12-31 cargo test --locked -p nexus --test it
	NEXUS_TEST_TODAY=2028-02-29 cargo test --locked -p nexus --test it

deps:
	scripts/install-build-deps.sh
	scripts/install-embedding-model.sh
	scripts/install-test-deps.sh
	scripts/install-beancount.sh
	scripts/install-export-checkers.sh
	scripts/install-schemathesis.sh
	scripts/install-sslyze.sh

# Benchmarks against PostgreSQL on this machine (see README).
bench:
	scripts/bench.sh
