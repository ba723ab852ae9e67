module github.com/infuse-lsp/infuse

go 1.26
