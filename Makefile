# Thin wrapper over CMake. `make` builds build/sluice; `make test` runs the whole suite (installing what it needs);
# `make demo` runs the seed pipeline on the embedded default.
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz

.PHONY: all deps asan test unit demo clean fuzz fuzz-long fuzz-campaign services-up services-down bench soak \
	image images deb deploy-test

all: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

deps:
	@bash scripts/deps.sh

asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSL_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

# The whole suite: unit tests, integration tests against the real Kafka and Cassandra, end-to-end and fuzz smoke runs.
test:
	@bash tests/run-all

unit: asan
	@cd $(ASAN_BUILD) && ctest -L unit --output-on-failure

demo: all
	@bash examples/seed/demo.sh

fuzz: deps
	@CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSL_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@bash tests/fuzz/run $(FUZZ_BUILD) $${FUZZ_SECONDS:-20}

fuzz-long:
	@FUZZ_SECONDS=600 $(MAKE) fuzz

# The campaign: every target for FUZZ_RUNS executions (default 10 million) on an optimized ASan+UBSan build
# (RelWithDebInfo: several times the executions per second of the Debug build); FUZZ_ONLY=a,b picks targets.
# Results: .cache/fuzz/summary.tsv; docs/fuzzing.md records the last full campaign.
fuzz-campaign: deps
	@CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD)-opt -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSL_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD)-opt -j $(JOBS)
	@FUZZ_RUNS=$${FUZZ_RUNS:-10000000} bash tests/fuzz/run $(FUZZ_BUILD)-opt

# Benchmarks are not tests: they never fail on speed and are not part of `make test`. Each writes its section of
# docs/benchmarks.md. BENCH=cql,ingest,process,peers picks some (peers: bench/run, sluice against Spark and Benthos).
bench: all
	@bash scripts/venv.sh >/dev/null
	@bash tests/services/run up kafka cassandra
	@for b in $$(echo $${BENCH:-cql,ingest,process,peers} | tr , ' '); do \
	  if [ "$$b" = peers ]; then echo "=== bench/run"; bench/run || echo "bench/run failed"; \
	  elif [ -x bench/$$b/run ]; then echo "=== bench/$$b"; bench/$$b/run || echo "bench/$$b failed"; fi; done

# The fault harness (tests/faults/faults.py) on the real Kafka and Cassandra: every scenario at the issue's numbers
# (20 kills each for ingest, process and up; Cassandra down 60 s). `make test` runs its short form (SL_FAULTS_SHORT=1).
faults: all
	@bash tests/services/run up kafka cassandra
	@VENV=$$(bash scripts/venv.sh) && SLUICE=$(BUILD)/sluice $$VENV/bin/python tests/faults/faults.py

# An hour (SOAK_SECONDS) of `sluice up` at half load, RSS and end-to-end latency sampled: docs/faults.md and
# docs/img/faults-soak.png.
soak: all
	@bash tests/services/run up kafka cassandra
	@VENV=$$(bash scripts/venv.sh) && SLUICE=$(BUILD)/sluice $$VENV/bin/python tests/faults/soak.py

# Deployment (docs/deploy.md). `make image`: the sluice image (Docker started and the base image made when needed);
# `make images`: also the Kafka and Cassandra images and deploy/.env for deploy/compose.yaml; `make deb`:
# sluice_<version>_amd64.deb. `make deploy-test`: the full deployment test (images, the 3+3 compose stack, kill -9
# of a processor and a node, down/up, the .deb in a clean Debian 12 container); `make test` runs its short form.
image:
	@bash scripts/docker-images.sh sluice
images:
	@bash scripts/docker-images.sh sluice kafka cassandra
deb: all
	@bash scripts/mkdeb.sh
deploy-test: all
	@bash tests/deploy/run full

services-up:
	@bash tests/services/run up
services-down:
	@bash tests/services/run down

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(FUZZ_BUILD)-opt
