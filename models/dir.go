//go:build noembed

package models

import (
	"io/fs"
	"os"
)

// Dir is where a binary built with -tags noembed finds the default model's
// files; set it at link time with
// -ldflags "-X github.com/infuse-lsp/infuse/models.Dir=/usr/share/infuse/default".
var Dir = "/usr/share/infuse/default"

// Default returns the directory Dir: config.json, model.safetensors,
// tokenizer.json and its model card.
func Default() fs.FS { return os.DirFS(Dir) }
