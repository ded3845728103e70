package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// readResponse reads one HTTP/1.1 response from br and returns its status,
// whether the server will close the connection, and up to 300 bytes of the
// body when the status is not 2xx. The body is read to its end (by
// Content-Length, chunked encoding, or, with neither, to the end of the
// connection) and dropped.
//
// It replaces http.ReadResponse on the load generator's hot path: it keeps
// no headers, allocates nothing for a 2xx answer, and knows only what it
// needs (Content-Length, Transfer-Encoding, Connection). A response it
// cannot make sense of is an error, and the connection is closed.
func readResponse(br *bufio.Reader, method string) (status int, closeConn bool, snippet []byte, err error) {
	line, err := readLine(br)
	if err != nil {
		return 0, false, nil, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return 0, false, nil, fmt.Errorf("malformed status line %q", trim(line))
	}
	status = 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, false, nil, fmt.Errorf("malformed status line %q", trim(line))
		}
		status = status*10 + int(c-'0')
	}
	if status < 100 {
		return 0, false, nil, fmt.Errorf("malformed status line %q", trim(line))
	}
	http10 := line[7] == '0'
	closeConn = http10

	length, chunked := int64(-1), false
	for n := 0; ; n++ {
		if n > 100 {
			return 0, false, nil, errors.New("more than 100 header lines")
		}
		h, err := readLine(br)
		if err != nil {
			return 0, false, nil, err
		}
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, false, nil, fmt.Errorf("malformed header line %q", trim(h))
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			v, ok := parseUint(value, 10)
			if !ok || (length >= 0 && v != length) {
				return 0, false, nil, fmt.Errorf("bad Content-Length %q", trim(value))
			}
			length = v
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			if !bytes.EqualFold(value, []byte("chunked")) {
				return 0, false, nil, fmt.Errorf("unsupported Transfer-Encoding %q", trim(value))
			}
			chunked = true
		case bytes.EqualFold(name, []byte("Connection")):
			switch {
			case bytes.EqualFold(value, []byte("close")):
				closeConn = true
			case bytes.EqualFold(value, []byte("keep-alive")):
				closeConn = false
			}
		}
	}

	var keep io.Writer = io.Discard
	var sn *limitedBuffer
	if status < 200 || status > 299 {
		sn = &limitedBuffer{}
		keep = sn
	}
	switch {
	case method == "HEAD" || status == 204 || status == 304 || status < 200:
		// no body
	case chunked:
		err = readChunked(br, keep)
	case length >= 0:
		err = copyN(keep, br, length)
	default:
		// Neither: the body runs to the end of the connection.
		closeConn = true
		_, err = io.Copy(keep, br)
	}
	if err != nil {
		return 0, false, nil, err
	}
	if sn != nil {
		snippet = sn.b
	}
	return status, closeConn, snippet, nil
}

// parseUint parses a non-empty decimal or hexadecimal number below 2^62
// (strconv would allocate for its error, on every call).
func parseUint(b []byte, base int64) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		var d int64
		switch {
		case '0' <= c && c <= '9':
			d = int64(c - '0')
		case base == 16 && 'a' <= c && c <= 'f':
			d = int64(c-'a') + 10
		case base == 16 && 'A' <= c && c <= 'F':
			d = int64(c-'A') + 10
		default:
			return 0, false
		}
		v = v*base + d
	}
	return v, true
}

// readLine reads one CRLF- (or LF-) terminated line without its end. A line
// longer than the reader's buffer is an error.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, errors.New("header line too long")
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// readChunked reads a chunked body (and its trailers) into w.
func readChunked(br *bufio.Reader, w io.Writer) error {
	for {
		line, err := readLine(br)
		if err != nil {
			return err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // chunk extensions
		}
		size, ok := parseUint(bytes.TrimSpace(line), 16)
		if !ok {
			return fmt.Errorf("bad chunk size %q", trim(line))
		}
		if size == 0 {
			for { // trailers, up to the blank line
				t, err := readLine(br)
				if err != nil {
					return err
				}
				if len(t) == 0 {
					return nil
				}
			}
		}
		if err := copyN(w, br, size); err != nil {
			return err
		}
		if end, err := readLine(br); err != nil || len(end) != 0 {
			if err == nil {
				err = errors.New("chunk not followed by CRLF")
			}
			return err
		}
	}
}

// copyN moves n bytes from br to w; dropped bytes are skipped in place,
// without a copy or an allocation.
func copyN(w io.Writer, br *bufio.Reader, n int64) error {
	var err error
	if w == io.Discard {
		for n > 0 && err == nil {
			var d int
			d, err = br.Discard(int(min(n, 1<<30)))
			n -= int64(d)
		}
	} else {
		_, err = io.CopyN(w, br, n)
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// limitedBuffer keeps the first 300 bytes written to it.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 300 - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// trim shortens what an error message quotes.
func trim(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
