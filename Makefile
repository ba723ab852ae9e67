# infuse — build, test, benchmark. `make test` is what CI runs (.ci/run).
GO ?= go
BIN := bin/infuse

.PHONY: build test test-go test-arm64 test-lsp test-editors vscode bench bench-kernels generate demo eval clean

build:
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/infuse

# Everything a change must pass. Installs what the client tests need.
test: build test-go test-arm64 test-lsp test-editors vscode

test-go:
	$(GO) vet ./...
	GOOS=windows GOARCH=amd64 $(GO) vet ./...
	GOOS=darwin GOARCH=arm64 $(GO) vet ./...
	$(GO) test ./...

# The arm64 build (NEON kernels) under qemu-user, when it is installed.
test-arm64:
	GO=$(GO) bash test/arm64.sh

# Real LSP clients over stdio: Microsoft's vscode-languageserver-protocol
# (npm ci on first use) and headless Neovim when it is installed.
test-lsp:
	bash test/lsp/run.sh

# Editor integrations against the real server: the Neovim plugin, and Emacs
# when it is installed.
test-editors: build
	INFUSE_BIN=$(CURDIR)/$(BIN) bash test/editors/run.sh

# The VS Code extension: npm ci, tsc, unit tests, bin/infuse-<version>.vsix.
vscode: build
	bash editors/vscode/build.sh

bench: build
	$(GO) test -run '^$$' -bench . -benchtime 20x ./...

# The GEMM kernels against the measured FMA peak and OpenBLAS, on the default
# model's and Qwen2.5-0.5B's shapes, 1 and 2 threads (needs gcc and
# libopenblas-dev; not part of `make test`). Run it on a quiet machine.
bench-kernels:
	GO=$(GO) bash bench/kernels/run.sh

# Regenerate committed generated code (assembly kernels).
generate:
	$(GO) generate ./...

# The main job on the embedded default model: complete a line of real code.
demo: build
	./$(BIN) complete --json testdata/demo/stack.py:8:27

# Infill quality of the default model on tasks cut from held-out files:
# the threshold sampler, one token per step (τ = 1), and trivial baselines.
EVAL ?= eval-out
eval: build
	mkdir -p $(EVAL)
	for kind in single multi; do \
	  ./$(BIN) eval --mode $$kind-line --in train/tasks/$$kind.jsonl --out $(EVAL)/$$kind-threshold.jsonl && \
	  ./$(BIN) eval --mode $$kind-line --threshold 1 --in train/tasks/$$kind.jsonl --out $(EVAL)/$$kind-one-per-step.jsonl || exit 1; \
	  for run in threshold one-per-step; do echo "$$kind $$run:"; python3 train/score.py --tasks train/tasks/$$kind.jsonl --out $(EVAL)/$$kind-$$run.jsonl; done; \
	  for b in empty repeat; do echo "$$kind baseline $$b:"; python3 train/score.py --tasks train/tasks/$$kind.jsonl --baseline $$b; done; \
	done

clean:
	rm -rf bin
