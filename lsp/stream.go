package lsp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"go.lsp.dev/jsonrpc2"
)

// maxBody bounds one message body. A completion session's largest message is
// a didOpen of a big file; 64 MiB is far above that and still refuses a
// hostile length before allocating it.
const maxBody = 64 << 20

// maxHeaderLine bounds one header line; real headers are under 100 bytes.
const maxHeaderLine = 4 << 10

var (
	errBadHeader = errors.New("malformed message header")
	errTooLarge  = errors.New("message body too large")
)

// frameReader reads LSP base-protocol frames: header lines ending in "\r\n"
// (a bare "\n" is accepted too), a blank line, then Content-Length bytes of
// body. After a malformed header it skips ahead to the next "Content-Length"
// so that one bad message costs one error reply, not the session.
type frameReader struct {
	r       *bufio.Reader
	resync  bool // skip to the next "Content-Length" before reading a header
	maxBody int
}

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, maxHeaderLine), maxBody: maxBody}
}

// next returns the body of the next frame. Its error is errBadHeader or
// errTooLarge (wrapped, with the reason) when the frame was bad but the stream
// can go on, and an I/O error (io.EOF at a clean boundary) when it cannot.
func (f *frameReader) next() ([]byte, error) {
	if f.resync {
		if err := f.skipToHeader(); err != nil {
			return nil, err
		}
		f.resync = false
	}
	length := -1
	seen := false // a header line has been read
	for {
		line, err := f.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			f.resync = true
			return nil, fmt.Errorf("%w: header line longer than %d bytes", errBadHeader, maxHeaderLine)
		}
		if err != nil {
			if err == io.EOF && !seen && len(line) == 0 {
				return nil, io.EOF
			}
			return nil, io.ErrUnexpectedEOF
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			if !seen {
				continue // tolerate blank lines between frames
			}
			break
		}
		seen = true
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			f.resync = true
			return nil, fmt.Errorf("%w: header line %q has no colon", errBadHeader, truncate(line))
		}
		if !bytes.EqualFold(bytes.TrimSpace(name), []byte("Content-Length")) {
			continue // Content-Type and anything else: ignored
		}
		n, err := strconv.Atoi(string(bytes.TrimSpace(value)))
		if err != nil || n < 0 {
			f.resync = true
			return nil, fmt.Errorf("%w: bad Content-Length %q", errBadHeader, truncate(value))
		}
		length = n
	}
	if length < 0 {
		f.resync = true
		return nil, fmt.Errorf("%w: no Content-Length", errBadHeader)
	}
	if length > f.maxBody {
		if _, err := io.CopyN(io.Discard, f.r, int64(length)); err != nil {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", errTooLarge, length, f.maxBody)
	}
	// Grow the body as it arrives rather than trusting the declared length
	// with one allocation up front.
	var body bytes.Buffer
	body.Grow(min(length, 64<<10))
	if _, err := io.CopyN(&body, f.r, int64(length)); err != nil {
		return nil, io.ErrUnexpectedEOF
	}
	return body.Bytes(), nil
}

// skipToHeader discards input up to the next "Content-Length" (any case),
// leaving the reader at its first byte.
func (f *frameReader) skipToHeader() error {
	const want = "content-length"
	for {
		b, err := f.r.Peek(len(want))
		if len(b) < len(want) {
			if err == nil {
				err = io.EOF
			}
			return err
		}
		if bytes.EqualFold(b, []byte(want)) {
			return nil
		}
		f.r.Discard(1)
	}
}

func truncate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// appendFrame appends body framed with its header to dst.
func appendFrame(dst, body []byte) []byte {
	dst = append(dst, "Content-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}

// Tap sees every message body a session reads (in is true) or writes, in
// order. It must not keep body.
type Tap func(in bool, body []byte)

// stream is the session's jsonrpc2.Stream. Unlike the library's own, it
// answers a body that is not JSON (ParseError) or not a JSON-RPC message
// (InvalidRequest), and a malformed header, with an error response and reads
// on, so one bad message never ends the session.
type stream struct {
	fr  *frameReader
	rwc io.ReadWriteCloser
	tap Tap

	// answered, if set, is told the id of each response written.
	answered func(jsonrpc2.ID)
	// atEOF, if set, runs when the input ends, before Read reports it: the
	// connection stops writing once its reader has stopped, so this is the
	// last chance to answer what was asked before the input ended.
	atEOF func()

	wmu sync.Mutex // guards buf and writes to rwc
	buf []byte
}

func newStream(rwc io.ReadWriteCloser, tap Tap) *stream {
	return &stream{fr: newFrameReader(rwc), rwc: rwc, tap: tap}
}

var _ jsonrpc2.Stream = (*stream)(nil)

func (s *stream) Read(ctx context.Context) (jsonrpc2.Message, int64, error) {
	for {
		body, err := s.fr.next()
		if err == io.EOF && s.atEOF != nil {
			s.atEOF()
		}
		if err != nil {
			if errors.Is(err, errBadHeader) || errors.Is(err, errTooLarge) {
				code := jsonrpc2.ParseError
				if errors.Is(err, errTooLarge) {
					code = jsonrpc2.InvalidRequest
				}
				s.reply(ctx, jsonrpc2.ID{}, jsonrpc2.NewError(code, err.Error()))
				continue
			}
			return nil, 0, err
		}
		if s.tap != nil {
			s.tap(true, body)
		}
		msg, err := jsonrpc2.DecodeMessage(body)
		if err != nil {
			s.reply(ctx, requestID(body), decodeError(body, err))
			continue
		}
		return msg, int64(len(body)), nil
	}
}

// decodeError turns a jsonrpc2.DecodeMessage failure into the error object
// to send: ParseError, saying where the JSON breaks, for text that is not
// JSON; InvalidRequest for JSON that is not a request, notification or
// response.
func decodeError(body []byte, err error) *jsonrpc2.Error {
	var v any
	if jerr := json.Unmarshal(body, &v); jerr != nil {
		return jsonrpc2.Errorf(jsonrpc2.ParseError, "parse error: %v", jerr)
	}
	var e *jsonrpc2.Error
	if errors.As(err, &e) && e.Code == jsonrpc2.InvalidRequest {
		return jsonrpc2.Errorf(jsonrpc2.InvalidRequest, "invalid request: not a JSON-RPC 2.0 request, notification or response")
	}
	return jsonrpc2.Errorf(jsonrpc2.ParseError, "parse error: %v", err)
}

// requestID digs the id out of a body that failed to decode as a message, so
// that a client waiting on that id hears about it. JSON-RPC says the id is
// null when it cannot be detected.
func requestID(body []byte) jsonrpc2.ID {
	var m struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(body, &m) != nil || len(m.ID) == 0 {
		return jsonrpc2.ID{}
	}
	var n int64
	if json.Unmarshal(m.ID, &n) == nil {
		return jsonrpc2.NewNumberID(n)
	}
	var s string
	if json.Unmarshal(m.ID, &s) == nil {
		return jsonrpc2.NewStringID(s)
	}
	return jsonrpc2.ID{}
}

func (s *stream) reply(ctx context.Context, id jsonrpc2.ID, err *jsonrpc2.Error) {
	// A write failure here also fails the next Read or Write; nothing to add.
	_, _ = s.Write(ctx, jsonrpc2.NewResponse(id, nil, err))
}

func (s *stream) Write(ctx context.Context, msg jsonrpc2.Message) (int64, error) {
	body, err := jsonrpc2.EncodeMessage(msg)
	if err != nil {
		return 0, fmt.Errorf("encode message: %w", err)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.tap != nil {
		s.tap(false, body)
	}
	s.buf = appendFrame(s.buf[:0], body)
	n, err := s.rwc.Write(s.buf)
	if cap(s.buf) > 1<<20 {
		s.buf = nil // don't pin one huge message's buffer for the session
	}
	if s.answered != nil && err == nil {
		// The connection writes its own message types, not *Response, so
		// read the id back from the body.
		if v, verr := jsonrpc2.ScanMessageView(body); verr == nil &&
			(v.Kind == jsonrpc2.MessageViewResponseResult || v.Kind == jsonrpc2.MessageViewResponseError) {
			if id, ok := v.ID.ID(); ok {
				s.answered(id)
			}
		}
	}
	return int64(n), err
}

func (s *stream) Close() error { return s.rwc.Close() }
