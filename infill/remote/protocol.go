package remote

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/infuse-lsp/infuse/infill"
)

// A protocol is one server API: how to ask, and how to read the answer.
type protocol interface {
	path() string       // the endpoint's usual path
	streamType() string // the media type of a streamed answer
	// request is the JSON body for req, with n tokens at most.
	request(cfg *Config, req infill.Request, single bool, n int) any
	// readStream and readOne read a streamed and a one-piece answer into a.
	readStream(r io.Reader, a *answer) error
	readOne(r io.Reader, a *answer) error
}

// answer gathers a completion as it arrives.
type answer struct {
	single bool      // stop at the first line break
	start  time.Time // when Complete began

	text         strings.Builder
	first        time.Duration // from start to the first text
	tokens       int           // generated tokens, if the server says
	promptTokens int           // prompt tokens, if the server says
	cut          bool          // reading stopped before the server's end
}

// add appends a piece of the middle and reports whether the answer is
// complete: a single-line middle is, once it holds a line break, and reading
// stops there (closing the stream, so the server stops too).
func (a *answer) add(s string) (done bool) {
	if s == "" {
		return false
	}
	if a.text.Len() == 0 {
		a.first = time.Since(a.start)
	}
	a.text.WriteString(s)
	if a.single && strings.Contains(s, "\n") {
		a.cut = true
	}
	return a.cut
}

// errBrokenOff wraps a stream that ended before its end mark.
func errBrokenOff(a *answer, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("the answer broke off after %d bytes (connection closed mid-stream)", a.text.Len())
	}
	return fmt.Errorf("reading the answer: %w", err)
}

// maxEvent bounds one SSE event or JSON line: a completion chunk is small,
// and a server sending megabytes without a break is not speaking the API.
const maxEvent = 1 << 20

// readEvents reads a server-sent event stream and calls data with the data
// of each event until it returns done or an error. It reports whether the
// stream ended (data said so) as opposed to running out.
func readEvents(r io.Reader, data func([]byte) (done bool, err error)) (ended bool, err error) {
	br := bufio.NewReaderSize(r, 4096)
	var buf []byte // the current event's data lines, joined by \n
	have := false
	for {
		line, err := readLine(br)
		if err != nil {
			if err == io.EOF && len(line) == 0 {
				if have {
					// A last event without its blank line.
					return data(buf)
				}
				return false, io.EOF
			}
			if err != io.EOF {
				return false, err
			}
		}
		switch {
		case len(line) == 0: // end of event
			if have {
				done, err := data(buf)
				if done || err != nil {
					return done, err
				}
			}
			buf, have = buf[:0], false
		case line[0] == ':': // comment, a keep-alive
		default:
			field, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			if string(field) != "data" {
				continue // event:, id:, retry:
			}
			if have {
				buf = append(buf, '\n')
			}
			buf, have = append(buf, value...), true
			if len(buf) > maxEvent {
				return false, fmt.Errorf("an event longer than %d bytes", maxEvent)
			}
		}
	}
}

// readLine reads one line without its \n or \r\n, refusing lines longer than
// maxEvent.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxEvent {
			return nil, fmt.Errorf("a line longer than %d bytes", maxEvent)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		return line, err
	}
}

// decodeJSON reads one JSON value of at most maxEvent bytes.
func decodeJSON(r io.Reader, v any) error {
	raw, err := io.ReadAll(io.LimitReader(r, maxEvent+1))
	if err != nil {
		return err
	}
	if len(raw) > maxEvent {
		return fmt.Errorf("an answer longer than %d bytes", maxEvent)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("malformed JSON answer: %w", err)
	}
	return nil
}
