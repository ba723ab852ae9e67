package remote

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
)

// KeyFromEnv reads an API key from the environment variable name. Errors name
// the variable, never its value.
func KeyFromEnv(name string) (string, error) {
	if name == "" {
		return "", errors.New("API key: no environment variable named")
	}
	v, ok := os.LookupEnv(name)
	if !ok {
		return "", fmt.Errorf("API key: environment variable %s is not set", name)
	}
	key := strings.TrimSpace(v)
	if key == "" {
		return "", fmt.Errorf("API key: environment variable %s is empty", name)
	}
	if err := checkKey(key); err != nil {
		return "", fmt.Errorf("API key in %s: %w", name, err)
	}
	return key, nil
}

// KeyFromFile reads an API key from a file that only its owner may read
// (mode 0600 or 0400): a key in a file others can read is already leaked,
// and refusing it is how the user finds out. Errors name the file, never its
// contents.
func KeyFromFile(path string) (string, error) {
	if path == "" {
		return "", errors.New("API key: no file named")
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("API key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("API key file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("API key file %s is not a regular file", path)
	}
	// Windows has no Unix permission bits to check.
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("API key file %s has mode %04o, readable by others: chmod 600 it", path, st.Mode().Perm())
	}
	const limit = 16 << 10
	buf := make([]byte, limit+1)
	n, err := f.Read(buf)
	if err != nil && n == 0 {
		return "", fmt.Errorf("API key file %s: %w", path, err)
	}
	if n > limit {
		return "", fmt.Errorf("API key file %s is larger than %d bytes: not a key", path, limit)
	}
	key := strings.TrimSpace(string(buf[:n]))
	if key == "" {
		return "", fmt.Errorf("API key file %s is empty", path)
	}
	if err := checkKey(key); err != nil {
		return "", fmt.Errorf("API key file %s: %w", path, err)
	}
	return key, nil
}

// checkKey refuses keys that cannot travel in an HTTP header, so that the
// failure is ours, clear, and free of the key, rather than net/http's.
func checkKey(key string) error {
	for _, r := range key {
		if r < 0x21 || r > 0x7e {
			return errors.New("the key holds spaces, line breaks or non-ASCII characters; want one token")
		}
	}
	return nil
}
