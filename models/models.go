//go:build !noembed

// Package models holds infuse's embedded default model: a small Dream-family
// masked-diffusion code model trained by train/ (see MODEL_CARD.md beside this file).
// Call [Default] for its files.
//
// Built with -tags noembed, the binary carries no model and Default reads
// the directory [Dir] instead (for packagers who ship the weights apart).
package models

import (
	"embed"
	"io/fs"
)

//go:embed default
var files embed.FS

// Default returns the default model's directory: config.json,
// model.safetensors, tokenizer.json and its model card.
func Default() fs.FS {
	sub, err := fs.Sub(files, "default")
	if err != nil {
		panic(err) // "default" is a valid path: fs.Sub cannot fail on it
	}
	return sub
}
