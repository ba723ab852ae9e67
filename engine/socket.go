package engine

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// SocketPath is the socket of the engine for model ("" is the embedded
// default model) run with the given engine arguments, in [RuntimeDir]. The
// name hashes the model, the arguments and this binary's build id, so that
// a client never talks to an engine built from other code or configured
// otherwise.
func SocketPath(model string, args []string) (string, error) {
	dir, err := RuntimeDir()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s", buildID(), model, strings.Join(args, "\x00"))
	return filepath.Join(dir, "infuse-engine-"+hex.EncodeToString(h.Sum(nil))[:16]+".sock"), nil
}

var buildID = sync.OnceValue(func() string {
	exe, err := os.Executable()
	if err != nil {
		return "unknown"
	}
	if id, err := goBuildID(exe); err == nil {
		return id
	}
	// No ELF note (another OS): the path, size and time of the binary
	// change whenever it is rebuilt in place.
	if fi, err := os.Stat(exe); err == nil {
		return fmt.Sprintf("%s:%d:%d", exe, fi.Size(), fi.ModTime().UnixNano())
	}
	return exe
})

// goBuildID reads the Go build id from the ELF note the linker writes.
func goBuildID(exe string) (string, error) {
	f, err := elf.Open(exe)
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := f.Section(".note.go.buildid")
	if s == nil {
		return "", errors.New("no Go build id note")
	}
	b, err := s.Data()
	if err != nil {
		return "", err
	}
	// An ELF note: namesz, descsz, type (4 bytes each), then the name
	// "Go\x00\x00" and the id, each padded to 4 bytes.
	if len(b) < 16 {
		return "", errors.New("short Go build id note")
	}
	namesz, descsz := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:])
	off := 12 + (uint64(namesz)+3)&^3
	if off+uint64(descsz) > uint64(len(b)) {
		return "", errors.New("bad Go build id note")
	}
	return string(b[off : off+uint64(descsz)]), nil
}
