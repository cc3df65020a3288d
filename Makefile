# Entry points for people and CI. `make test` is what CI runs (.ci/run).

CARGO ?= cargo
SAMPLE := target/sample

.PHONY: demo test lint unit integration fmt bench clean-sample

## Run the main job on the bundled sample catalog (a real barman-cloud catalog, laid out as a local mirror).
demo:
	$(CARGO) run --quiet --example materialize -- tests/fixtures/pg-main $(SAMPLE)
	@# The sample has a WAL gap, so both commands report findings (exit 1): that is the point.
	-$(CARGO) run --quiet -- catalog show file://$(CURDIR)/$(SAMPLE)/cluster --now 2026-11-24T16:50:00Z
	-$(CARGO) run --quiet -- catalog check file://$(CURDIR)/$(SAMPLE)/cluster --to latest --now 2026-11-24T16:50:00Z
	@# The bundled GitOps repository: its databases, and a lint (one deliberate deprecation warning).
	$(CARGO) run --quiet -- ls --repo tests/fixtures/repos/gke
	$(CARGO) run --quiet -- lint tests/fixtures/repos/gke

## Everything CI checks: formatting, lints, hermetic tests, then the real-service integration tests.
test: lint unit integration

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

unit:
	$(CARGO) test --locked

## Real PostgreSQL, barman-cloud and an S3 server on 127.0.0.1; installs what is missing.
integration:
	$(CARGO) build --locked
	bash integration/run.sh

fmt:
	$(CARGO) fmt --all

## Speed and memory: criterion benches, then cnpg-ops against barman-cloud at 10k, 100k and 1M WAL objects (BENCHMARKS.md).
bench:
	$(CARGO) bench --locked --bench catalog
	bash integration/bench.sh
