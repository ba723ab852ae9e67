package lsp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/textproto"
	"strconv"
	"strings"
	"testing"

	"go.lsp.dev/jsonrpc2"
)

// bufConn is an in-memory connection: reads come from in, writes go to out.
type bufConn struct {
	in  io.Reader
	out bytes.Buffer
}

func (c *bufConn) Read(p []byte) (int, error)  { return c.in.Read(p) }
func (c *bufConn) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c *bufConn) Close() error                { return nil }

// readAll reads messages from input until the stream ends, returning them
// and the frames the stream wrote back (its error replies).
func readAll(t *testing.T, input []byte) (msgs []jsonrpc2.Message, replies []*wireMsg, err error) {
	conn := &bufConn{in: bytes.NewReader(input)}
	s := newStream(conn, nil)
	for {
		m, _, rerr := s.Read(context.Background())
		if rerr != nil {
			err = rerr
			break
		}
		msgs = append(msgs, m)
	}
	r := textproto.NewReader(bufio.NewReader(&conn.out))
	for {
		h, herr := r.ReadMIMEHeader()
		if herr == io.EOF {
			break
		}
		if herr != nil {
			t.Fatalf("the stream wrote a bad header: %v", herr)
		}
		n, aerr := strconv.Atoi(h.Get("Content-Length"))
		if aerr != nil {
			t.Fatalf("the stream wrote a bad Content-Length %q", h.Get("Content-Length"))
		}
		body := make([]byte, n)
		if _, rerr := io.ReadFull(r.R, body); rerr != nil {
			t.Fatalf("the stream wrote a short body: %v", rerr)
		}
		w := &wireMsg{raw: body}
		if jerr := json.Unmarshal(body, w); jerr != nil {
			t.Fatalf("the stream wrote invalid JSON %q", body)
		}
		replies = append(replies, w)
	}
	return msgs, replies, err
}

func frame(body string) string {
	return "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

func TestStreamRecovers(t *testing.T) {
	good := `{"jsonrpc":"2.0","id":1,"method":"a"}`
	input := strings.Join([]string{
		frame(good),
		frame(`{not json`),
		"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n" + frame(`{"jsonrpc":"2.0","method":"b"}`),
		"X-Bad-Header\r\n\r\n" + `{"jsonrpc":"2.0","id":2,"method":"lost"}`, // no length: skipped up to the next frame
		frame(`{"jsonrpc":"2.0","id":3}`),
		"\r\n\r\n" + frame(`{"jsonrpc":"2.0","id":4,"method":"c","params":{"x":"é𐐀"}}`),
		"Content-Length: 99999999999\r\n\r\n", // too large, and the input ends inside it
	}, "")
	msgs, replies, err := readAll(t, []byte(input))
	if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		t.Errorf("final error %v", err)
	}
	var methods []string
	for _, m := range msgs {
		methods = append(methods, m.(jsonrpc2.RequestMessage).Method())
	}
	if strings.Join(methods, ",") != "a,b,c" {
		t.Errorf("messages %v, want a,b,c", methods)
	}
	var codes []string
	for _, r := range replies {
		codes = append(codes, string(r.ID)+":"+strconv.FormatInt(r.Error.Code, 10))
	}
	if strings.Join(codes, " ") != "null:-32700 null:-32700 3:-32600" {
		t.Errorf("replies %v", codes)
	}
}

func TestStreamTooLarge(t *testing.T) {
	conn := &bufConn{in: strings.NewReader("Content-Length: 50\r\n\r\n" + strings.Repeat("x", 50) + frame(`{"jsonrpc":"2.0","method":"after"}`))}
	s := newStream(conn, nil)
	s.fr.maxBody = 40
	m, _, err := s.Read(context.Background())
	if err != nil || m.(jsonrpc2.RequestMessage).Method() != "after" {
		t.Fatalf("Read = %v, %v; want the message after the oversized one", m, err)
	}
	if !strings.Contains(conn.out.String(), "-32600") || !strings.Contains(conn.out.String(), "too large") {
		t.Errorf("reply %q, want InvalidRequest: too large", conn.out.String())
	}
}

func TestStreamWriteFraming(t *testing.T) {
	var taps []string
	conn := &bufConn{in: strings.NewReader(frame(`{"jsonrpc":"2.0","method":"in"}`))}
	s := newStream(conn, func(in bool, body []byte) { taps = append(taps, strconv.FormatBool(in)+" "+string(body)) })
	if _, _, err := s.Read(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(context.Background(), jsonrpc2.NewNotification("out", jsonrpc2.RawMessage(`{"a":"𐐀"}`))); err != nil {
		t.Fatal(err)
	}
	want := frame(`{"jsonrpc":"2.0","method":"out","params":{"a":"𐐀"}}`)
	if conn.out.String() != want {
		t.Errorf("wrote %q, want %q", conn.out.String(), want)
	}
	if len(taps) != 2 || taps[0] != `true {"jsonrpc":"2.0","method":"in"}` || !strings.HasPrefix(taps[1], "false ") {
		t.Errorf("tap saw %q", taps)
	}
}

// FuzzFrames feeds arbitrary bytes to the stream: it must never panic or
// loop, every reply it writes must be a well-formed error response, and every
// message it returns must have come from a frame that decodes.
func FuzzFrames(f *testing.F) {
	f.Add([]byte(frame(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`)))
	f.Add([]byte(frame(`{"jsonrpc":"2.0","id":1}`) + frame(`[]`) + frame(`{`)))
	f.Add([]byte("Content-Length: 5\r\n\r\n{}"))
	f.Add([]byte("content-length:2\n\n{}Content-Length: 0\r\n\r\n"))
	f.Add([]byte("no header at all\r\n\r\n{\"jsonrpc\":\"2.0\"}Content-Length: 2\r\n\r\n{}"))
	f.Add([]byte("Content-Length: -1\r\n\r\n"))
	f.Add([]byte(strings.Repeat("A", maxHeaderLine+10) + "\r\n\r\n" + frame(`{"jsonrpc":"2.0","method":"x"}`)))
	f.Add([]byte(frame("{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"params\":\"\xff\"}")))
	f.Fuzz(func(t *testing.T, input []byte) {
		msgs, replies, _ := readAll(t, input)
		for _, r := range replies {
			if r.Error == nil || (r.Error.Code != -32700 && r.Error.Code != -32600) || r.Method != "" {
				t.Fatalf("reply %s is not a ParseError or InvalidRequest response", r.raw)
			}
		}
		for _, m := range msgs {
			if _, err := jsonrpc2.EncodeMessage(m); err != nil {
				t.Fatalf("message %v does not encode again: %v", m, err)
			}
		}
	})
}
