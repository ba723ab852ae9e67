// Package npy writes and reads NumPy .npy files of little-endian float32 in
// C order, the format in which infuse exchanges logits with PyTorch. Call
// [Write] and [Read].
package npy

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
)

const magic = "\x93NUMPY"

// Write writes data as a version 1.0 .npy array of dtype '<f4' and the
// given shape.
func Write(w io.Writer, data []float32, shape ...int) error {
	n := 1
	dims := make([]string, len(shape))
	for i, d := range shape {
		if d < 0 {
			return fmt.Errorf("npy: negative dimension in shape %v", shape)
		}
		n *= d
		dims[i] = strconv.Itoa(d)
	}
	if n != len(data) {
		return fmt.Errorf("npy: shape %v holds %d values, data has %d", shape, n, len(data))
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	hdr := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", tuple)
	// Pad with spaces and end with a newline so that the data starts on a
	// multiple of 64 bytes, as NumPy does.
	total := len(magic) + 2 + 2 + len(hdr) + 1
	hdr += strings.Repeat(" ", (64-total%64)%64) + "\n"
	if len(hdr) > math.MaxUint16 {
		return errors.New("npy: shape too long for a version 1.0 header")
	}
	bw := bufio.NewWriter(w)
	bw.WriteString(magic)
	bw.Write([]byte{1, 0})
	binary.Write(bw, binary.LittleEndian, uint16(len(hdr)))
	bw.WriteString(hdr)
	var b [4]byte
	for _, v := range data {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
		bw.Write(b[:])
	}
	return bw.Flush()
}

var (
	descrRE   = regexp.MustCompile(`'descr':\s*'([^']*)'`)
	fortranRE = regexp.MustCompile(`'fortran_order':\s*(True|False)`)
	shapeRE   = regexp.MustCompile(`'shape':\s*\(([^)]*)\)`)
)

// Read reads a .npy array of dtype '<f4' in C order (versions 1 to 3).
func Read(r io.Reader) (data []float32, shape []int, err error) {
	br := bufio.NewReader(r)
	var pre [8]byte
	if _, err := io.ReadFull(br, pre[:]); err != nil {
		return nil, nil, fmt.Errorf("npy: reading magic: %w", err)
	}
	if string(pre[:6]) != magic {
		return nil, nil, errors.New("npy: not a .npy file (bad magic)")
	}
	var hlen int
	switch pre[6] {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return nil, nil, fmt.Errorf("npy: reading header length: %w", err)
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return nil, nil, fmt.Errorf("npy: reading header length: %w", err)
		}
		hlen = int(binary.LittleEndian.Uint32(b[:]))
		if hlen > 1<<20 {
			return nil, nil, fmt.Errorf("npy: header of %d bytes is implausibly long", hlen)
		}
	default:
		return nil, nil, fmt.Errorf("npy: unknown version %d.%d", pre[6], pre[7])
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return nil, nil, fmt.Errorf("npy: reading header: %w", err)
	}
	h := string(hdr)
	if m := descrRE.FindStringSubmatch(h); m == nil || m[1] != "<f4" {
		return nil, nil, fmt.Errorf("npy: dtype is not little-endian float32 ('<f4'): header %q", strings.TrimSpace(h))
	}
	if m := fortranRE.FindStringSubmatch(h); m == nil || m[1] != "False" {
		return nil, nil, errors.New("npy: only C-order arrays are supported")
	}
	m := shapeRE.FindStringSubmatch(h)
	if m == nil {
		return nil, nil, fmt.Errorf("npy: no shape in header %q", strings.TrimSpace(h))
	}
	n := 1
	for _, f := range strings.Split(m[1], ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		d, err := strconv.Atoi(f)
		if err != nil || d < 0 || (d > 0 && n > math.MaxInt32/d) {
			return nil, nil, fmt.Errorf("npy: bad shape (%s)", m[1])
		}
		shape = append(shape, d)
		n *= d
	}
	raw := make([]byte, 4*n)
	if _, err := io.ReadFull(br, raw); err != nil {
		return nil, nil, fmt.Errorf("npy: reading %d values: %w", n, err)
	}
	data = make([]float32, n)
	for i := range data {
		data[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return data, shape, nil
}
