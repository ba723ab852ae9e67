//go:build !windows

package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// RuntimeDir is where the engine's socket, lock and log live: the user's
// $XDG_RUNTIME_DIR, else a directory only the user can enter under the
// system's temporary directory. It creates the latter if needed and refuses
// one that another user owns or others can enter.
func RuntimeDir() (string, error) {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d, nil
		}
	}
	d := filepath.Join(os.TempDir(), fmt.Sprintf("infuse-%d", os.Getuid()))
	if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("runtime directory: %w", err)
	}
	fi, err := os.Lstat(d)
	if err != nil {
		return "", fmt.Errorf("runtime directory: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Getuid() || fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("runtime directory %s is not a directory private to this user (uid %d, mode 0700); remove it or set XDG_RUNTIME_DIR", d, os.Getuid())
	}
	return d, nil
}

// Listen takes the engine's lock for path and listens on it, owner-only.
// While one engine holds the lock another gets an error wrapping
// [fs.ErrExist]; a socket file left by a crashed engine (the lock died
// with it) is replaced. Closing the listener removes the socket; the lock
// is released when the process exits or the returned release is called.
func Listen(path string) (ln *net.UnixListener, release func(), err error) {
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("engine lock: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, nil, fmt.Errorf("an engine already serves %s: %w", path, fs.ErrExist)
		}
		return nil, nil, fmt.Errorf("engine lock: %w", err)
	}
	release = func() { lock.Close() }
	// We hold the lock, so whatever socket file is there is stale.
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			release()
			return nil, nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			release()
			return nil, nil, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	ln, err = net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		release()
		return nil, nil, fmt.Errorf("listen: %w", err)
	}
	// The directory is private already; the mode keeps the socket so if
	// someone points --socket elsewhere.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		release()
		return nil, nil, fmt.Errorf("listen: %w", err)
	}
	return ln, release, nil
}
