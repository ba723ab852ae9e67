package lsp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata")

// TestTranscripts replays recorded sessions. Each testdata/*.jsonl file is a
// transcript, one message per line: {"send": MESSAGE} is written to the
// server as is, {"sendRaw": "TEXT"} is written as a frame whose body is TEXT
// (for bodies that are not JSON), and {"recv": MESSAGE} is what the server
// wrote, byte for byte. The test sends the send lines in order; after a
// request it reads everything the server writes up to that request's
// response. The messages read must equal the file's recv lines exactly;
// -update rewrites them.
//
// The server runs with the test's deterministic fake model and no debounce,
// and the transcripts use nothing that sends messages at a time of its own
// (no progress reports), so the transcript is the same on every run.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.jsonl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) { replayTranscript(t, file) })
	}
}

type transcriptLine struct {
	Send    json.RawMessage `json:"send,omitempty"`
	SendRaw *string         `json:"sendRaw,omitempty"`
	Recv    json.RawMessage `json:"recv,omitempty"`
}

func replayTranscript(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var sends []transcriptLine
	var wantRecv [][]byte
	for i, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var l transcriptLine
		if err := json.Unmarshal(line, &l); err != nil {
			t.Fatalf("%s:%d: %v", file, i+1, err)
		}
		if l.Recv != nil {
			wantRecv = append(wantRecv, l.Recv)
		} else {
			sends = append(sends, l)
		}
	}

	checkGoroutines(t)
	srvEnd, cliEnd := net.Pipe()
	srv := New(Options{Load: loaderOf(&fakeCompleter{}), Config: testConfig(), Logger: testLogger(t), Version: "test"})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background(), srvEnd) }()
	// Read on a goroutine of its own: the pipe has no buffer, and the server
	// may write (a showMessage after a notification) while the test writes.
	bodies := make(chan []byte, 1024)
	go func() {
		defer close(bodies)
		r := textproto.NewReader(bufio.NewReader(cliEnd))
		for {
			h, err := r.ReadMIMEHeader()
			if err != nil {
				return
			}
			n, _ := strconv.Atoi(h.Get("Content-Length"))
			body := make([]byte, n)
			if _, err := io.ReadFull(r.R, body); err != nil {
				return
			}
			bodies <- body
		}
	}()
	readBody := func() []byte {
		select {
		case b, ok := <-bodies:
			if !ok {
				t.Fatal("the server closed the connection")
			}
			return b
		case <-timeoutC():
			t.Fatal("no message from the server")
			return nil
		}
	}

	defer func() {
		cliEnd.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve = %v", err)
		}
		for b := range bodies {
			t.Errorf("the server wrote after the transcript ended: %s", b)
		}
	}()

	var out bytes.Buffer // the transcript as replayed
	var gotRecv [][]byte
	for _, l := range sends {
		body := []byte(l.Send)
		if l.SendRaw != nil {
			body = []byte(*l.SendRaw)
			q, _ := json.Marshal(*l.SendRaw)
			fmt.Fprintf(&out, "{\"sendRaw\":%s}\n", q)
		} else {
			fmt.Fprintf(&out, "{\"send\":%s}\n", body)
		}
		if _, err := fmt.Fprintf(cliEnd, "Content-Length: %d\r\n\r\n%s", len(body), body); err != nil {
			t.Fatalf("writing to the server: %v", err)
		}
		// A request, or a body the server answers with an error: read up to
		// the answer.
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		isCall := json.Unmarshal(body, &msg) == nil && msg.ID != nil && msg.Method != ""
		answered := l.SendRaw != nil // every raw body in a transcript is a bad one
		if !isCall && !answered {
			continue
		}
		for {
			got := readBody()
			gotRecv = append(gotRecv, got)
			fmt.Fprintf(&out, "{\"recv\":%s}\n", got)
			var resp struct {
				ID     json.RawMessage `json:"id"`
				Method string          `json:"method"`
			}
			json.Unmarshal(got, &resp)
			if resp.Method == "" && (answered || bytes.Equal(resp.ID, msg.ID)) {
				break
			}
		}
	}

	if *update {
		if err := os.WriteFile(file, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if len(gotRecv) != len(wantRecv) {
		t.Errorf("the server wrote %d messages, the transcript has %d", len(gotRecv), len(wantRecv))
	}
	for i := range min(len(gotRecv), len(wantRecv)) {
		if !bytes.Equal(gotRecv[i], wantRecv[i]) {
			t.Errorf("message %d:\ngot  %s\nwant %s", i+1, gotRecv[i], wantRecv[i])
		}
	}
}
