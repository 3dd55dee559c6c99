package s3mem

import (
	"cmp"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// minPartSize is S3's least size of a multipart upload's parts but the last.
const minPartSize = 5 << 20

// upload is a multipart upload in progress.
type upload struct {
	attrs
	bucket, key string
	initiated   time.Time
	checksum    checksum // the algorithm and type asked for, if any
	parts       map[int]part
}

type part struct {
	data []byte
	etag string
}

func (s *Server) createMultipartUpload(w http.ResponseWriter, r *http.Request, bucket, key string) *s3Error {
	a, err := attrsFrom(r.Header)
	if err != nil {
		return err
	}
	cs := checksum{alg: strings.ToLower(r.Header.Get("X-Amz-Checksum-Algorithm")), typ: cmp.Or(r.Header.Get("X-Amz-Checksum-Type"), "COMPOSITE")}
	if cs.alg != "" && algorithms[cs.alg] == nil {
		return notImplemented("the " + cs.alg + " checksum algorithm")
	}
	if cs.typ != "COMPOSITE" && (cs.typ != "FULL_OBJECT" || !strings.HasPrefix(cs.alg, "crc")) {
		return fail(http.StatusBadRequest, "InvalidRequest", "The checksum type %s is not supported for %s.", cs.typ, cs.alg)
	}
	id := rand.Text()
	s.mu.Lock()
	if s.buckets[bucket] == nil {
		s.mu.Unlock()
		return errNoSuchBucket
	}
	s.uploads[id] = &upload{attrs: a, bucket: bucket, key: key, initiated: now(), checksum: cs, parts: map[int]part{}}
	s.mu.Unlock()
	writeXML(w, http.StatusOK, struct {
		XMLName  xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ InitiateMultipartUploadResult"`
		Bucket   string
		Key      string
		UploadID string `xml:"UploadId"`
	}{Bucket: bucket, Key: key, UploadID: id})
	return nil
}

// upload returns the request's upload, which must be of bucket/key.
// s.mu must be held.
func (s *Server) upload(r *http.Request, bucket, key string) (*upload, *s3Error) {
	up := s.uploads[r.URL.Query().Get("uploadId")]
	if up == nil || up.bucket != bucket || up.key != key {
		return nil, errNoSuchUpload
	}
	return up, nil
}

// putPart stores data as the request's part and returns its ETag.
func (s *Server) putPart(r *http.Request, bucket, key string, data []byte) (string, *s3Error) {
	n, err := strconv.Atoi(r.URL.Query().Get("partNumber"))
	if err != nil || n < 1 || n > 10000 {
		return "", fail(http.StatusBadRequest, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	up, serr := s.upload(r, bucket, key)
	if serr != nil {
		return "", serr
	}
	p := part{data, etag(data)}
	up.parts[n] = p
	return p.etag, nil
}

func (s *Server) uploadPart(w http.ResponseWriter, r *http.Request, bucket, key string) *s3Error {
	data, cs, err := readBody(r)
	if err != nil {
		return err
	}
	tag, err := s.putPart(r, bucket, key, data)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", tag)
	if cs.alg != "" {
		w.Header().Set("X-Amz-Checksum-"+cs.alg, cs.value)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) uploadPartCopy(w http.ResponseWriter, r *http.Request, bucket, key string) *s3Error {
	src, err := s.source(r)
	if err != nil {
		return err
	}
	data := src.data
	if v := r.Header.Get("X-Amz-Copy-Source-Range"); v != "" {
		first, last, _ := strings.Cut(strings.TrimPrefix(v, "bytes="), "-")
		a, errA := strconv.ParseInt(first, 10, 64)
		b, errB := strconv.ParseInt(last, 10, 64)
		if !strings.HasPrefix(v, "bytes=") || errA != nil || errB != nil || a < 0 || b < a {
			return fail(http.StatusBadRequest, "InvalidArgument", "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy")
		}
		if b >= int64(len(data)) {
			return fail(http.StatusBadRequest, "InvalidArgument", "Range specified is not valid for source object of size: %d", len(data))
		}
		data = data[a : b+1]
	}
	tag, err := s.putPart(r, bucket, key, data)
	if err != nil {
		return err
	}
	writeXML(w, http.StatusOK, struct {
		XMLName      xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CopyPartResult"`
		ETag         string
		LastModified string
	}{ETag: tag, LastModified: isoTime(now())})
	return nil
}

func (s *Server) completeMultipartUpload(w http.ResponseWriter, r *http.Request, bucket, key string) *s3Error {
	body, _, err := readBody(r)
	if err != nil {
		return err
	}
	var req struct {
		Parts []struct {
			PartNumber int
			ETag       string
		} `xml:"Part"`
	}
	if xml.Unmarshal(body, &req) != nil || len(req.Parts) == 0 {
		return fail(http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	up, err := s.upload(r, bucket, key)
	if err != nil {
		return err
	}
	parts := make([]part, len(req.Parts))
	for i, p := range req.Parts {
		if i > 0 && p.PartNumber <= req.Parts[i-1].PartNumber {
			return fail(http.StatusBadRequest, "InvalidPartOrder", "The list of parts was not in ascending order. The parts list must be specified in order by part number.")
		}
	}
	for i, p := range req.Parts {
		got, ok := up.parts[p.PartNumber]
		if !ok || strings.Trim(p.ETag, `"`) != strings.Trim(got.etag, `"`) {
			return fail(http.StatusBadRequest, "InvalidPart", "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.")
		}
		parts[i] = got
	}
	var data, sums []byte
	for i, got := range parts {
		if i < len(parts)-1 && len(got.data) < minPartSize {
			return fail(http.StatusBadRequest, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.")
		}
		data = append(data, got.data...)
		sum, _ := hex.DecodeString(strings.Trim(got.etag, `"`))
		sums = append(sums, sum...)
	}
	if v := r.Header.Get("X-Amz-Mp-Object-Size"); v != "" && v != strconv.Itoa(len(data)) {
		return fail(http.StatusBadRequest, "InvalidRequest", "The provided x-amz-mp-object-size %s does not match the object's size %d.", v, len(data))
	}
	n := "-" + strconv.Itoa(len(parts))
	m := md5.Sum(sums)
	o := &object{attrs: up.attrs, data: data, etag: `"` + hex.EncodeToString(m[:]) + n + `"`, checksum: up.checksum}
	switch cs := &o.checksum; {
	case cs.alg == "":
	case cs.typ == "FULL_OBJECT":
		cs.value = sum(cs.alg, data)
	default: // the checksum of the parts' checksums
		var sums []byte
		for _, p := range parts {
			sums = append(sums, digest(cs.alg, p.data)...)
		}
		cs.value = sum(cs.alg, sums) + n
	}
	if err := s.storeLocked(r.Header, bucket, key, o); err != nil {
		return err
	}
	delete(s.uploads, r.URL.Query().Get("uploadId"))
	writeXML(w, http.StatusOK, struct {
		XMLName  xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CompleteMultipartUploadResult"`
		Location string
		Bucket   string
		Key      string
		ETag     string
	}{Location: endpoint + "/" + bucket + "/" + url.PathEscape(key), Bucket: bucket, Key: key, ETag: o.etag})
	return nil
}

func (s *Server) abortMultipartUpload(w http.ResponseWriter, r *http.Request, bucket, key string) *s3Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.upload(r, bucket, key); err != nil {
		return err
	}
	delete(s.uploads, r.URL.Query().Get("uploadId"))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listMultipartUploads lists a bucket's uploads in progress, in one page.
func (s *Server) listMultipartUploads(w http.ResponseWriter, r *http.Request, bucket string) *s3Error {
	q := r.URL.Query()
	if q.Has("delimiter") {
		return notImplemented("ListMultipartUploads with a delimiter")
	}
	maxUploads := 1000
	if v := q.Get("max-uploads"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fail(http.StatusBadRequest, "InvalidArgument", "max-uploads must be a positive integer")
		}
		maxUploads = min(n, 1000)
	}
	type entry struct {
		Key       string
		UploadID  string `xml:"UploadId"`
		Initiated string
		initiated time.Time
	}
	res := struct {
		XMLName     xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListMultipartUploadsResult"`
		Bucket      string
		Prefix      string
		MaxUploads  int
		IsTruncated bool
		Uploads     []entry `xml:"Upload"`
	}{Bucket: bucket, Prefix: q.Get("prefix"), MaxUploads: maxUploads}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.buckets[bucket] == nil {
		return errNoSuchBucket
	}
	for id, up := range s.uploads {
		if up.bucket == bucket && strings.HasPrefix(up.key, res.Prefix) {
			res.Uploads = append(res.Uploads, entry{up.key, id, isoTime(up.initiated), up.initiated})
		}
	}
	if len(res.Uploads) > maxUploads {
		return notImplemented("paging ListMultipartUploads")
	}
	slices.SortFunc(res.Uploads, func(a, b entry) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), a.initiated.Compare(b.initiated))
	})
	writeXML(w, http.StatusOK, res)
	return nil
}
