# infuse — build, test, benchmark. `make test` is what CI runs (.ci/run).
GO ?= go
BIN := bin/infuse

.PHONY: build test test-go test-lsp bench generate demo eval clean

build:
	$(GO) build -o $(BIN) ./cmd/infuse

# Everything a change must pass. Installs what the client tests need.
test: build test-go

test-go:
	$(GO) vet ./...
	$(GO) test ./...

bench: build
	$(GO) test -run '^$$' -bench . -benchtime 20x ./...

# Regenerate committed generated code (assembly kernels).
generate:
	$(GO) generate ./...

# The main job on the embedded default model: complete a line of real code.
demo: build
	./$(BIN) complete --json testdata/demo/stack.py:13:16

clean:
	rm -rf bin
