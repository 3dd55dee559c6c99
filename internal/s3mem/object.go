package s3mem

import (
	"cmp"
	"encoding/base64"
	"encoding/xml"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// object is a stored object. It is never changed once stored: a write
// replaces it, so a reader may use it after unlocking.
type object struct {
	attrs
	data     []byte
	etag     string // quoted
	modified time.Time
	checksum checksum
}

// attrs are what a write says about an object besides its bytes.
type attrs struct {
	meta   map[string]string // x-amz-meta-*, keys in lower case
	header http.Header       // Content-Type and the other stored headers
	tags   url.Values
}

// storedHeaders are the headers S3 keeps with an object and returns.
var storedHeaders = []string{"Content-Type", "Content-Encoding", "Content-Disposition", "Content-Language", "Cache-Control", "Expires",
	"X-Amz-Website-Redirect-Location", "X-Amz-Storage-Class"}

// uncopiedHeaders are stored headers a copy takes from its request, never
// from its source, whatever the metadata directive.
var uncopiedHeaders = []string{"X-Amz-Website-Redirect-Location", "X-Amz-Storage-Class"}

// attrsFrom reads an object's attributes from a write's headers.
func attrsFrom(h http.Header) (attrs, *s3Error) {
	a := attrs{meta: map[string]string{}, header: http.Header{}}
	for name, v := range h {
		if k, ok := strings.CutPrefix(name, "X-Amz-Meta-"); ok {
			a.meta[strings.ToLower(k)] = strings.Join(v, ",")
		}
	}
	for _, name := range storedHeaders {
		if v := h.Get(name); v != "" {
			a.header.Set(name, v)
		}
	}
	// aws-chunked describes the request's framing, not the object.
	enc := slices.DeleteFunc(strings.Split(a.header.Get("Content-Encoding"), ","), func(e string) bool {
		e = strings.TrimSpace(e)
		return e == "" || e == "aws-chunked"
	})
	if a.header.Del("Content-Encoding"); len(enc) > 0 {
		a.header.Set("Content-Encoding", strings.Join(enc, ","))
	}
	if a.header.Get("Content-Type") == "" {
		a.header.Set("Content-Type", "binary/octet-stream")
	}
	tags, err := tagsFrom(h)
	a.tags = tags
	return a, err
}

func tagsFrom(h http.Header) (url.Values, *s3Error) {
	tags, err := url.ParseQuery(h.Get("X-Amz-Tagging"))
	if err != nil {
		return nil, fail(http.StatusBadRequest, "InvalidArgument", "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.")
	}
	return tags, nil
}

// writeHeaders sets o's response headers for GET and HEAD.
func (o *object) writeHeaders(h http.Header) {
	for name, v := range o.header {
		h[name] = v
	}
	for k, v := range o.meta {
		h.Set("X-Amz-Meta-"+k, v)
	}
	h.Set("ETag", o.etag)
	h.Set("Last-Modified", o.modified.Format(http.TimeFormat))
	h.Set("Accept-Ranges", "bytes")
	if len(o.tags) > 0 {
		h.Set("X-Amz-Tagging-Count", strconv.Itoa(len(o.tags)))
	}
}

// get returns the object at bucket/key.
func (s *Server) get(bucket, key string) (*object, *s3Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[bucket]
	if b == nil {
		return nil, errNoSuchBucket
	}
	if o := b[key]; o != nil {
		return o, nil
	}
	return nil, errNoSuchKey
}

// store writes o to bucket/key if the write's conditions (If-None-Match: *,
// If-Match) hold against what is there.
func (s *Server) store(h http.Header, bucket, key string, o *object) *s3Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.storeLocked(h, bucket, key, o)
}

// storeLocked is store with s.mu held.
func (s *Server) storeLocked(h http.Header, bucket, key string, o *object) *s3Error {
	b := s.buckets[bucket]
	if b == nil {
		return errNoSuchBucket
	}
	cur := b[key]
	if v := h.Get("If-None-Match"); v != "" {
		if v != "*" {
			return notImplemented("If-None-Match other than * on a write")
		}
		if cur != nil {
			return errPrecondition
		}
	}
	if err := ifMatch(h, cur); err != nil {
		return err
	}
	o.modified = now()
	b[key] = o
	return nil
}

// ifMatch checks a write's or a delete's If-Match against what is there.
func ifMatch(h http.Header, cur *object) *s3Error {
	switch v := h.Get("If-Match"); {
	case v == "":
		return nil
	case cur == nil:
		return errNoSuchKey
	case !etagMatches(v, cur.etag):
		return errPrecondition
	}
	return nil
}

// etagMatches reports whether an If-Match or If-None-Match list names etag.
func etagMatches(list, etag string) bool {
	for e := range strings.SplitSeq(list, ",") {
		e = strings.TrimPrefix(strings.TrimSpace(e), "W/")
		if e == "*" || strings.Trim(e, `"`) == strings.Trim(etag, `"`) {
			return true
		}
	}
	return false
}

// preconditions evaluates a read's conditions on o in RFC 9110's order,
// returning 0 to proceed, 412 or 304. prefix is "" for GET and HEAD and
// "X-Amz-Copy-Source-" for the source of a copy.
func preconditions(h http.Header, prefix string, o *object) int {
	date := func(name string) (time.Time, bool) {
		t, err := http.ParseTime(h.Get(prefix + name))
		return t, err == nil
	}
	if v := h.Get(prefix + "If-Match"); v != "" {
		if !etagMatches(v, o.etag) {
			return http.StatusPreconditionFailed
		}
	} else if t, ok := date("If-Unmodified-Since"); ok && o.modified.After(t) {
		return http.StatusPreconditionFailed
	}
	if v := h.Get(prefix + "If-None-Match"); v != "" {
		if etagMatches(v, o.etag) {
			return http.StatusNotModified
		}
	} else if t, ok := date("If-Modified-Since"); ok && !o.modified.After(t) {
		return http.StatusNotModified
	}
	return 0
}

func (s *Server) putObject(w http.ResponseWriter, r *http.Request, bucket, key string) *s3Error {
	data, cs, err := readBody(r)
	if err != nil {
		return err
	}
	a, err := attrsFrom(r.Header)
	if err != nil {
		return err
	}
	o := &object{attrs: a, data: data, etag: etag(data), checksum: cs}
	if err := s.store(r.Header, bucket, key, o); err != nil {
		return err
	}
	w.Header().Set("ETag", o.etag)
	if cs.alg != "" {
		w.Header().Set("X-Amz-Checksum-"+cs.alg, cs.value)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// getObject serves GetObject and HeadObject.
func (s *Server) getObject(w http.ResponseWriter, r *http.Request, bucket, key string) *s3Error {
	if r.URL.Query().Has("partNumber") {
		return notImplemented("GetObject and HeadObject by part number")
	}
	o, err := s.get(bucket, key)
	if err != nil {
		return err
	}
	switch preconditions(r.Header, "", o) {
	case http.StatusPreconditionFailed:
		return errPrecondition
	case http.StatusNotModified:
		w.Header().Set("ETag", o.etag)
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	size := int64(len(o.data))
	start, end, ranged, ok := parseRange(r.Header.Get("Range"), size)
	if !ok {
		w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
		return fail(http.StatusRequestedRangeNotSatisfiable, "InvalidRange", "The requested range is not satisfiable")
	}
	h := w.Header()
	o.writeHeaders(h)
	h.Set("Content-Length", strconv.FormatInt(end-start, 10))
	status := http.StatusOK
	if ranged {
		status = http.StatusPartialContent
		h.Set("Content-Range", "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(end-1, 10)+"/"+strconv.FormatInt(size, 10))
	} else if o.checksum.alg != "" && strings.EqualFold(r.Header.Get("X-Amz-Checksum-Mode"), "ENABLED") {
		h.Set("X-Amz-Checksum-"+o.checksum.alg, o.checksum.value)
		h.Set("X-Amz-Checksum-Type", o.checksum.typ)
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(o.data[start:end])
	}
	return nil
}

// parseRange reads a Range header as S3 does: one range of bytes, or the
// whole object (ranged false) if the header is absent or malformed. ok is
// false if the range is not satisfiable.
func parseRange(v string, size int64) (start, end int64, ranged, ok bool) {
	spec, found := strings.CutPrefix(v, "bytes=")
	first, last, dash := strings.Cut(spec, "-")
	if !found || !dash || strings.Contains(spec, ",") {
		return 0, size, false, true
	}
	a, errA := strconv.ParseInt(first, 10, 64)
	b, errB := strconv.ParseInt(last, 10, 64)
	switch {
	case first == "" && errB == nil && b >= 0: // bytes=-n: the last n
		if b == 0 || size == 0 {
			return 0, 0, true, false
		}
		return size - min(b, size), size, true, true
	case errA != nil || a < 0 || (last != "" && (errB != nil || b < a)):
		return 0, size, false, true
	case a >= size:
		return 0, 0, true, false
	case last == "":
		return a, size, true, true
	}
	return a, min(b+1, size), true, true
}

func (s *Server) deleteObject(w http.ResponseWriter, r *http.Request, bucket, key string) *s3Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[bucket]
	if b == nil {
		return errNoSuchBucket
	}
	if err := ifMatch(r.Header, b[key]); err != nil {
		return err
	}
	delete(b, key)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) deleteObjects(w http.ResponseWriter, r *http.Request, bucket string) *s3Error {
	data, _, err := readBody(r)
	if err != nil {
		return err
	}
	var req struct {
		Quiet   bool
		Objects []struct {
			Key       string
			VersionID string `xml:"VersionId"`
		} `xml:"Object"`
	}
	if xml.Unmarshal(data, &req) != nil || len(req.Objects) == 0 || len(req.Objects) > 1000 {
		return fail(http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.")
	}
	type deleted struct{ Key string }
	type deleteError struct{ Key, Code, Message string }
	var res struct {
		XMLName xml.Name      `xml:"http://s3.amazonaws.com/doc/2006-03-01/ DeleteResult"`
		Deleted []deleted     `xml:"Deleted"`
		Errors  []deleteError `xml:"Error"`
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[bucket]
	if b == nil {
		return errNoSuchBucket
	}
	for _, o := range req.Objects {
		if o.VersionID != "" {
			res.Errors = append(res.Errors, deleteError{o.Key, "NotImplemented", "s3mem does not implement versions"})
			continue
		}
		delete(b, o.Key)
		if !req.Quiet {
			res.Deleted = append(res.Deleted, deleted{o.Key})
		}
	}
	writeXML(w, http.StatusOK, res)
	return nil
}

// copySource reads x-amz-copy-source: [/]bucket/key, URL-encoded.
func copySource(r *http.Request) (bucket, key string, err *s3Error) {
	v := strings.TrimPrefix(r.Header.Get("X-Amz-Copy-Source"), "/")
	if strings.Contains(v, "?") {
		return "", "", notImplemented("copying a version")
	}
	v, uerr := url.PathUnescape(v)
	bucket, key, ok := strings.Cut(v, "/")
	if uerr != nil || !ok || bucket == "" || key == "" {
		return "", "", fail(http.StatusBadRequest, "InvalidArgument", "Invalid copy source")
	}
	return bucket, key, nil
}

// source returns the object a copy reads, if its conditions hold.
func (s *Server) source(r *http.Request) (*object, *s3Error) {
	bucket, key, err := copySource(r)
	if err != nil {
		return nil, err
	}
	o, err := s.get(bucket, key)
	if err != nil {
		return nil, err
	}
	if preconditions(r.Header, "X-Amz-Copy-Source-", o) != 0 {
		return nil, errPrecondition
	}
	return o, nil
}

func (s *Server) copyObject(w http.ResponseWriter, r *http.Request, bucket, key string) *s3Error {
	src, err := s.source(r)
	if err != nil {
		return err
	}
	a := src.attrs
	switch d := r.Header.Get("X-Amz-Metadata-Directive"); d {
	case "", "COPY":
		changes := slices.ContainsFunc([]string{"X-Amz-Storage-Class", "X-Amz-Website-Redirect-Location", "X-Amz-Checksum-Algorithm", "X-Amz-Server-Side-Encryption"},
			func(name string) bool { return r.Header.Get(name) != "" })
		if sb, sk, _ := copySource(r); sb == bucket && sk == key && !changes {
			return fail(http.StatusBadRequest, "InvalidRequest", "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
		}
	case "REPLACE":
		if a, err = attrsFrom(r.Header); err != nil {
			return err
		}
	default:
		return fail(http.StatusBadRequest, "InvalidArgument", "Unknown metadata directive %q", d)
	}
	a.header = a.header.Clone()
	for _, name := range uncopiedHeaders {
		a.header.Del(name)
		if v := r.Header.Get(name); v != "" {
			a.header.Set(name, v)
		}
	}
	switch d := r.Header.Get("X-Amz-Tagging-Directive"); d {
	case "", "COPY":
		a.tags = src.tags
	case "REPLACE":
		if a.tags, err = tagsFrom(r.Header); err != nil {
			return err
		}
	default:
		return fail(http.StatusBadRequest, "InvalidArgument", "Unknown tagging directive %q", d)
	}
	o := &object{attrs: a, data: src.data, etag: etag(src.data), checksum: src.checksum}
	if alg := strings.ToLower(r.Header.Get("X-Amz-Checksum-Algorithm")); alg != "" {
		if algorithms[alg] == nil {
			return notImplemented("the " + alg + " checksum algorithm")
		}
		o.checksum = checksum{alg, sum(alg, o.data), "FULL_OBJECT"}
	}
	if err := s.store(r.Header, bucket, key, o); err != nil {
		return err
	}
	writeXML(w, http.StatusOK, struct {
		XMLName      xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CopyObjectResult"`
		ETag         string
		LastModified string
	}{ETag: o.etag, LastModified: isoTime(o.modified)})
	return nil
}

func (s *Server) getObjectTagging(w http.ResponseWriter, bucket, key string) *s3Error {
	o, err := s.get(bucket, key)
	if err != nil {
		return err
	}
	type tag struct{ Key, Value string }
	var res struct {
		XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ Tagging"`
		TagSet  []tag    `xml:"TagSet>Tag"`
	}
	for _, k := range slices.Sorted(maps.Keys(o.tags)) {
		res.TagSet = append(res.TagSet, tag{k, o.tags.Get(k)})
	}
	writeXML(w, http.StatusOK, res)
	return nil
}

func (s *Server) listObjects(w http.ResponseWriter, r *http.Request, bucket string) *s3Error {
	q := r.URL.Query()
	prefix, delim := q.Get("prefix"), q.Get("delimiter")
	maxKeys := 1000
	if v := q.Get("max-keys"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fail(http.StatusBadRequest, "InvalidArgument", "Provided max-keys not an integer or within integer range")
		}
		maxKeys = min(n, 1000)
	}
	marker := q.Get("start-after")
	if t := q.Get("continuation-token"); t != "" {
		b, err := base64.RawURLEncoding.DecodeString(t)
		if err != nil {
			return fail(http.StatusBadRequest, "InvalidArgument", "The continuation token provided is incorrect")
		}
		marker = string(b)
	}

	type entry struct {
		Key          string
		LastModified string
		ETag         string
		Size         int
		StorageClass string
	}
	type commonPrefix struct{ Prefix string }
	res := struct {
		XMLName               xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
		Name                  string
		Prefix                string
		Delimiter             string `xml:",omitempty"`
		StartAfter            string `xml:",omitempty"`
		ContinuationToken     string `xml:",omitempty"`
		NextContinuationToken string `xml:",omitempty"`
		KeyCount              int
		MaxKeys               int
		IsTruncated           bool
		Contents              []entry
		CommonPrefixes        []commonPrefix
	}{Name: bucket, Prefix: prefix, Delimiter: delim, StartAfter: q.Get("start-after"),
		ContinuationToken: q.Get("continuation-token"), MaxKeys: maxKeys}

	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[bucket]
	if b == nil {
		return errNoSuchBucket
	}
	keys := make([]string, 0, len(b))
	for k := range b {
		if strings.HasPrefix(k, prefix) && k > marker {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	last := "" // the last key or common prefix listed
	for _, k := range keys {
		item, isPrefix := k, false
		if i := strings.Index(k[len(prefix):], delim); delim != "" && i >= 0 {
			item, isPrefix = k[:len(prefix)+i+len(delim)], true
			if item == marker || item == last { // listed on this or an earlier page
				continue
			}
		}
		if res.KeyCount == maxKeys {
			res.IsTruncated = maxKeys > 0
			break
		}
		if o := b[k]; isPrefix {
			res.CommonPrefixes = append(res.CommonPrefixes, commonPrefix{item})
		} else {
			class := cmp.Or(o.header.Get("X-Amz-Storage-Class"), "STANDARD")
			res.Contents = append(res.Contents, entry{k, isoTime(o.modified), o.etag, len(o.data), class})
		}
		res.KeyCount++
		last = item
	}
	if res.IsTruncated {
		res.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(last))
	}
	writeXML(w, http.StatusOK, res)
	return nil
}
