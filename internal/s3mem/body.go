package s3mem

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// checksum is an object's checksum as S3 keeps it: the algorithm's name in
// lower case (as in its header, x-amz-checksum-crc32), the base64 of the
// big-endian digest, and its type: FULL_OBJECT, or COMPOSITE for the
// checksum of a multipart upload's part checksums ("…-N").
type checksum struct{ alg, value, typ string }

// algorithms are the checksum algorithms the SDK computes.
var algorithms = map[string]func() hash.Hash{
	"crc32":     func() hash.Hash { return crc32.NewIEEE() },
	"crc32c":    func() hash.Hash { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) },
	"crc64nvme": func() hash.Hash { return crc64.New(crc64.MakeTable(0x9a6c9329ac4bc9b5)) }, // reversed NVME polynomial
	"sha1":      sha1.New,
	"sha256":    sha256.New,
	"sha512":    sha512.New,
}

func digest(alg string, data []byte) []byte {
	h := algorithms[alg]()
	h.Write(data)
	return h.Sum(nil)
}

func sum(alg string, data []byte) string { return base64.StdEncoding.EncodeToString(digest(alg, data)) }

// readBody reads a request's payload, decoding aws-chunked framing, and
// verifies every checksum the request carries (x-amz-checksum-* in headers
// or trailers, Content-MD5, a hex x-amz-content-sha256). It returns the
// payload and its x-amz-checksum, if it had one.
func readBody(r *http.Request) ([]byte, checksum, *s3Error) {
	var (
		data    []byte
		trailer http.Header
		err     *s3Error
	)
	if strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-") {
		data, trailer, err = readChunked(r)
	} else {
		data, err = readExactly(r.Body, r.ContentLength)
	}
	if err != nil {
		return nil, checksum{}, err
	}
	h := r.Header
	if len(trailer) > 0 {
		h = h.Clone()
		for name, v := range trailer {
			h[name] = v
		}
	}
	cs, err := verify(h, data)
	return data, cs, err
}

// readExactly reads a body of n bytes (n < 0: not declared).
func readExactly(body io.Reader, n int64) ([]byte, *s3Error) {
	if n < 0 {
		return nil, fail(http.StatusLengthRequired, "MissingContentLength", "You must provide the Content-Length HTTP header.")
	}
	data, err := io.ReadAll(io.LimitReader(body, n+1))
	if err != nil || int64(len(data)) != n {
		return nil, fail(http.StatusBadRequest, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header.")
	}
	return data, nil
}

// readChunked decodes an aws-chunked body: chunks of "<hex size>[;ext]\r\n
// <data>\r\n", a final "0\r\n", then trailer lines "name:value\r\n" and an
// empty line. Chunk signatures (extensions) are not checked.
func readChunked(r *http.Request) ([]byte, http.Header, *s3Error) {
	n, err := strconv.ParseInt(r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
	if err != nil || n < 0 {
		return nil, nil, fail(http.StatusLengthRequired, "MissingContentLength", "An aws-chunked request must carry x-amz-decoded-content-length.")
	}
	bad := func(what string) *s3Error {
		return fail(http.StatusBadRequest, "IncompleteBody", "aws-chunked body: %s", what)
	}
	br := bufio.NewReader(r.Body)
	line := func() (string, bool) {
		s, err := br.ReadString('\n')
		return strings.TrimSuffix(s, "\r\n"), err == nil && strings.HasSuffix(s, "\r\n")
	}
	data := make([]byte, 0, min(n, 64<<20)) // n is the client's word
	for {
		l, ok := line()
		size, _, _ := strings.Cut(l, ";")
		sz, err := strconv.ParseInt(size, 16, 64)
		if !ok || err != nil || sz < 0 {
			return nil, nil, bad("malformed chunk header")
		}
		if sz == 0 {
			break
		}
		if sz > n-int64(len(data)) {
			return nil, nil, bad("more data than x-amz-decoded-content-length")
		}
		start := len(data)
		data = slices.Grow(data, int(sz))[:start+int(sz)]
		if _, err := io.ReadFull(br, data[start:]); err != nil {
			return nil, nil, bad("short chunk")
		}
		if l, ok := line(); !ok || l != "" {
			return nil, nil, bad("chunk not followed by CRLF")
		}
	}
	if int64(len(data)) != n {
		return nil, nil, bad("less data than x-amz-decoded-content-length")
	}
	trailer := http.Header{}
	for {
		l, ok := line()
		if !ok {
			return nil, nil, bad("unterminated trailer")
		}
		if l == "" {
			break
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			return nil, nil, bad("malformed trailer")
		}
		trailer.Set(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	for _, names := range r.Header.Values("X-Amz-Trailer") {
		for name := range strings.SplitSeq(names, ",") {
			if trailer.Get(strings.TrimSpace(name)) == "" {
				return nil, nil, fail(http.StatusBadRequest, "MalformedTrailerError", "The request lacks the trailer %s it announced.", name)
			}
		}
	}
	return data, trailer, nil
}

// verify checks data against the checksums in h and returns its
// x-amz-checksum, if any.
func verify(h http.Header, data []byte) (checksum, *s3Error) {
	var cs checksum
	for name, values := range h {
		alg, ok := strings.CutPrefix(strings.ToLower(name), "x-amz-checksum-")
		if !ok || alg == "algorithm" || alg == "type" || alg == "mode" {
			continue
		}
		if algorithms[alg] == nil {
			return cs, notImplemented("the " + alg + " checksum algorithm")
		}
		if cs.alg != "" || len(values) != 1 {
			return cs, fail(http.StatusBadRequest, "InvalidRequest", "Expecting a single x-amz-checksum- header.")
		}
		if sum(alg, data) != values[0] {
			return cs, fail(http.StatusBadRequest, "BadDigest", "The %s you specified did not match the calculated checksum.", strings.ToUpper(alg))
		}
		cs = checksum{alg, values[0], "FULL_OBJECT"}
	}
	if v := h.Get("Content-Md5"); v != "" {
		m := md5.Sum(data)
		if v != base64.StdEncoding.EncodeToString(m[:]) {
			return cs, fail(http.StatusBadRequest, "BadDigest", "The Content-MD5 you specified did not match what we received.")
		}
	}
	if v := h.Get("X-Amz-Content-Sha256"); len(v) == 64 {
		if want, err := hex.DecodeString(v); err == nil {
			if got := sha256.Sum256(data); !bytes.Equal(got[:], want) {
				return cs, fail(http.StatusBadRequest, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.")
			}
		}
	}
	return cs, nil
}

// etag is S3's ETag of an object stored whole: the quoted hex MD5.
func etag(data []byte) string {
	m := md5.Sum(data)
	return `"` + hex.EncodeToString(m[:]) + `"`
}
