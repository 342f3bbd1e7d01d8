# Hearth — run `make help` for the targets.

VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
GO        ?= go
LDFLAGS   := -s -w -X main.version=$(VERSION)
GOFLAGS   := -trimpath
export CGO_ENABLED := 0
BIN       := bin/hearth
DATA      ?= ./hearth-data
RUN_ADDR  ?= 127.0.0.1:8443

.DEFAULT_GOAL := help

.PHONY: help
help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build a static binary into bin/hearth
	$(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/hearth

.PHONY: run
run: build ## build and start Hearth on http://localhost:8443 with state in ./hearth-data
	@echo "Starting Hearth on http://$(RUN_ADDR) — the setup token is in the log below."
	./$(BIN) serve --data $(DATA) --listen $(RUN_ADDR) --http-listen 127.0.0.1:8080 --tls off --mdns=false --tailnet=false

.PHONY: deps
deps: ## install what the tests need (Chromium, qemu-user, iproute2, npm packages)
	@./.ci/deps

.PHONY: test
test: deps check ## install test tools, then run every test: Go, fuzz seeds, ARM under qemu, browser, packages
	$(GO) test -count=1 -timeout 15m ./...
	$(MAKE) --no-print-directory test-arm-qemu
	$(MAKE) --no-print-directory test-browser
	$(MAKE) --no-print-directory test-deb

.PHONY: test-arm
test-arm: cross ## run the ARM builds under qemu-user
	@for a in arm64:qemu-aarch64-static armv7:qemu-arm-static armv6:qemu-arm-static; do \
		arch=$${a%%:*}; emu=$${a#*:}; \
		out=$$($$emu dist/hearth-linux-$$arch version) || { echo "$$arch build does not run under $$emu"; exit 1; }; \
		echo "$$arch: $$out"; \
		echo "$$out" | grep -q "linux/arm" || { echo "$$arch: unexpected output"; exit 1; }; \
	done

.PHONY: test-arm-qemu
test-arm-qemu: ## run the ARM builds under qemu-user: serve, sign in, post, clean stop
	@./.ci/test-arm-qemu

.PHONY: deb
deb: ## build .deb packages and tarballs for amd64, arm64, armhf into dist/
	@./.ci/deb

.PHONY: test-deb
test-deb: ## build, lint and install-test the packages in a booted Debian container (root)
	@./.ci/test-deb

.PHONY: test-browser
test-browser: build ## run the browser tests in Chromium (in a private network namespace)
	HEARTH_BIN=$(CURDIR)/$(BIN) OUT=$(CURDIR)/webui/tests/out ./webui/tests/run.sh

.PHONY: bench
bench: ## run the benchmarks and print the figures as a table
	@./.ci/bench

.PHONY: soak
soak: ## long runs: 50 SIGKILL cycles, then a SOAK (10m) load with 1,000 clients, voice, relay, restarts
	@./.ci/soak $(or $(SOAK),10m)

.PHONY: cross
cross: ## build static binaries for linux amd64, arm64, armv7 and armv6 into dist/
	@mkdir -p dist
	GOOS=linux GOARCH=amd64 $(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o dist/hearth-linux-amd64 ./cmd/hearth
	GOOS=linux GOARCH=arm64 $(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o dist/hearth-linux-arm64 ./cmd/hearth
	GOOS=linux GOARCH=arm GOARM=7 $(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o dist/hearth-linux-armv7 ./cmd/hearth
	GOOS=linux GOARCH=arm GOARM=6 $(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o dist/hearth-linux-armv6 ./cmd/hearth

.PHONY: fmt
fmt: ## format the Go code
	gofmt -w cmd appliance webui

.PHONY: vet
vet: ## go vet
	$(GO) vet ./...

.PHONY: lint
lint: ## staticcheck (pinned in go.mod)
	$(GO) tool staticcheck ./...

.PHONY: check
check: vet lint ## gofmt, vet, staticcheck and the import rules
	@out=$$(gofmt -l cmd appliance webui); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) test -count=1 -run TestImportRules ./appliance/

.PHONY: fuzz
fuzz: ## fuzz every parser for FUZZTIME each (default 30s)
	@./.ci/fuzz $(or $(FUZZTIME),30s)

.PHONY: clean
clean: ## remove build output (not ./hearth-data)
	rm -rf bin dist webui/tests/out
