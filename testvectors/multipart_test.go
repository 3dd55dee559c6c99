package testvectors

// Cross-client tests of this library's multipart writes (s3crypto.Uploader)
// and ranged reads (s3crypto.Downloader), over versitygw and local-kms:
//
//   - TestMultipartKMSPeersRead: the Uploader writes V2 and V3 objects with a
//     KMS key (kms+context, with an encryption context), envelope in
//     metadata or an instruction file, as ONE GCM stream across parts (the
//     tag at the end of the last part). AWS's Go clients (v3.2.0, v4.0.0)
//     read them under every commitment policy that allows the format, and
//     Ruby's EncryptionV2 client (get-kms) reads the V2 ones.
//   - TestMultipartRubyReadsV2: V2 objects with AES/GCM and RSA-OAEP-SHA1
//     master keys, in metadata and in an instruction file, read by Ruby's
//     EncryptionV2 client (get-v2).
//   - TestMultipartTamperedRefused: the negative control: with one bit
//     flipped in a middle part, the last part or the tag (stored again with
//     the same part boundaries), every one of those readers refuses.
//   - TestMultipartDownloaderReadsAWSGo: the reverse direction: objects
//     written by AWS's Go clients' PutObject are read by the Downloader in
//     several ranged GETs.
//
// Sizes: 0 (one PutObject), 5 MiB + 3 (two parts of 5 MiB) and
// 16 MiB + 17 (four parts), with Concurrency 1 and 4, and bodies of known
// length (a bytes.Reader) and unknown length (wrapped in io.MultiReader,
// which hides the Seeker). Every object is checked to really be multipart
// (UploadOutput.Parts and UploadId, and versitygw's "-N" ETag) and every
// read is compared with the plaintext by SHA-256.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3envelope/s3envelope/envelope"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// mpPartSize is the Uploader's PartSize in these tests: S3's minimum.
const mpPartSize = 5 << 20 // S3's smallest part

// mpSizes are the plaintext sizes: empty (the single PutObject path), just
// over one part (2 parts), and three parts and a bit (4 parts).
var mpSizes = []int{0, 5<<20 + 3, 16<<20 + 17}

// mpCase is one upload: a size, the Uploader's Concurrency, and whether the
// body's length is known.
type mpCase struct {
	size        int
	concurrency int
	known       bool
}

func (c mpCase) String() string {
	k := "unknown-length"
	if c.known {
		k = "known-length"
	}
	return fmt.Sprintf("%d-c%d-%s", c.size, c.concurrency, k)
}

// parts is the number of parts the Uploader should use (1: one PutObject).
func (c mpCase) parts() int { return max(1, (c.size+mpPartSize-1)/mpPartSize) }

// mpAllCases is every size × Concurrency {1, 4} × known/unknown length.
func mpAllCases() []mpCase {
	var cs []mpCase
	for _, size := range mpSizes {
		for _, conc := range []int{1, 4} {
			for _, known := range []bool{true, false} {
				cs = append(cs, mpCase{size, conc, known})
			}
		}
	}
	return cs
}

// mpSpotCases is a subset for RSA-OAEP-SHA1 master keys, whose wrap is
// independent of the body (the body dimensions are covered in full with
// AES/GCM and KMS): each size, both concurrencies and both kinds of body at
// least once, both multipart sizes with an unknown length.
var mpSpotCases = []mpCase{
	{0, 1, true},
	{5<<20 + 3, 1, false},
	{5<<20 + 3, 4, true},
	{16<<20 + 17, 4, false},
}

// mpPlaintext is a random plaintext of each size, made once and shared by
// every object of that size, with its SHA-256.
type mpPlaintext struct {
	data []byte
	sum  [32]byte
}

var (
	mpPlaintextsMu sync.Mutex
	mpPlaintexts   = map[int]*mpPlaintext{}
)

func mpPlaintextOf(t testing.TB, size int) *mpPlaintext {
	t.Helper()
	mpPlaintextsMu.Lock()
	defer mpPlaintextsMu.Unlock()
	if p := mpPlaintexts[size]; p != nil {
		return p
	}
	data := plaintext(t, size)
	p := &mpPlaintext{data: data, sum: sha256.Sum256(data)}
	mpPlaintexts[size] = p
	return p
}

// mpCheckSum reports whether got is exactly want's plaintext, failing the
// test if not.
func mpCheckSum(t testing.TB, what string, got []byte, want *mpPlaintext) bool {
	t.Helper()
	sum := sha256.Sum256(got)
	if sum != want.sum {
		t.Errorf("%s: plaintext differs: got %d bytes (SHA-256 %x), want %d bytes (SHA-256 %x)",
			what, len(got), sum[:8], len(want.data), want.sum[:8])
	}
	return sum == want.sum
}

// mpUpload stores pt under key with an Uploader over c, as mc says, and
// checks that the object is what was asked for: the right number of parts
// (a multipart upload with an ETag ending in "-N", or one PutObject), and
// ciphertext = plaintext + the 16-byte GCM tag.
func mpUpload(t testing.TB, c *s3crypto.Client, s3c *s3.Client, bucket, key string, mc mpCase, pt *mpPlaintext, ec map[string]string) {
	t.Helper()
	u := s3crypto.NewUploader(c, func(o *s3crypto.UploaderOptions) {
		o.PartSize = mpPartSize
		o.Concurrency = mc.concurrency
	})
	var body io.Reader = bytes.NewReader(pt.data)
	if !mc.known {
		body = io.MultiReader(body) // hides Seek: length unknown
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := u.Upload(libWithEC(ctx, ec), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: body})
	if err != nil {
		t.Fatalf("Uploader.Upload %s (%v): %v", key, mc, err)
	}
	want := mc.parts()
	if out.Parts != want || out.Size != int64(mc.size) || (out.UploadId != nil) != (want > 1) {
		t.Fatalf("Upload %s (%v): Parts %d, Size %d, UploadId %v; want %d parts, %d bytes, multipart %v",
			key, mc, out.Parts, out.Size, aws.ToString(out.UploadId), want, mc.size, want > 1)
	}
	head, err := s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("HeadObject %s: %v", key, err)
	}
	if got := aws.ToInt64(head.ContentLength); got != int64(mc.size)+format.TagSize {
		t.Errorf("%s: stored %d bytes, want %d (plaintext + tag)", key, got, mc.size+format.TagSize)
	}
	etag := strings.Trim(aws.ToString(head.ETag), `"`)
	if want > 1 {
		if !strings.HasSuffix(etag, "-"+strconv.Itoa(want)) {
			t.Errorf("%s: ETag %q has no -%d suffix: not stored as a %d-part upload", key, etag, want, want)
		}
		if outTag := strings.Trim(aws.ToString(out.ETag), `"`); outTag != etag {
			t.Errorf("%s: Upload returned ETag %q, HeadObject says %q", key, outTag, etag)
		}
	} else if strings.Contains(etag, "-") {
		t.Errorf("%s: ETag %q looks multipart; want a single PutObject", key, etag)
	}
}

// mpCheckLength checks x-amz-unencrypted-content-length among a V2
// object's envelope fields: the plaintext length when it was known before
// the upload began (or the object is one PutObject), absent otherwise. V3
// objects do not carry it.
func mpCheckLength(t testing.TB, key string, so storedObject, mc mpCase) {
	t.Helper()
	v, ok := so.fields["x-amz-unencrypted-content-length"]
	switch {
	case so.format == "V3":
		if ok {
			t.Errorf("%s: V3 object stores x-amz-unencrypted-content-length = %q", key, v)
		}
	case mc.known || mc.parts() == 1:
		if v != strconv.Itoa(mc.size) {
			t.Errorf("%s (%v): x-amz-unencrypted-content-length = %q (present %v), want %d", key, mc, v, ok, mc.size)
		}
	default:
		if ok {
			t.Errorf("%s (%v): x-amz-unencrypted-content-length = %q for a body of unknown length", key, mc, v)
		}
	}
}

// mpReader is one reading client.
type mpReader struct {
	name string
	get  func(t *testing.T, bucket, key, storage string, ec map[string]string) ([]byte, error)
}

// mpAWSReader reads with one of AWS's Go clients (a peer from awsgo_test.go).
func mpAWSReader(p *peer) mpReader {
	return mpReader{name: p.String(), get: func(t *testing.T, bucket, key, _ string, ec map[string]string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		return p.get(ctx, bucket, key, ec)
	}}
}

// mpRubyKMSReader reads with Ruby's EncryptionV2 client and a KMS key
// (any-key mode, as rubykms_test.go explains).
var mpRubyKMSReader = mpReader{name: "ruby-v2/kms", get: func(t *testing.T, bucket, key, storage string, ec map[string]string) ([]byte, error) {
	got, msg, err := rubyKMSGet(t, bucket, key, storage, ec)
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, strings.TrimSpace(msg))
	}
	return got, nil
}}

// mpRubyKMSRawReader is mpRubyKMSReader for reads that must be refused: it
// returns whatever Ruby left in its output file along with the error.
// Ruby's EncryptionV2 decrypter (aws-sdk-s3 1.117, io_decrypter.rb) writes
// each decrypted chunk to the response target as it arrives and checks the
// GCM tag only in cipher.final, so a refused read leaves the unauthenticated
// plaintext in the file.
var mpRubyKMSRawReader = mpReader{name: "ruby-v2/kms", get: func(t *testing.T, bucket, key, storage string, ec map[string]string) ([]byte, error) {
	out := filepath.Join(t.TempDir(), "out")
	args := []string{"get-kms", "--bucket", bucket, "--key", key, "--out", out, "--storage", storage, "--kms-any-key"}
	if ec != nil {
		args = append(args, "--kms-context", mustJSON(t, ec))
	}
	msg, err := runPeerResult(t, args...)
	got, _ := os.ReadFile(out)
	if err != nil {
		return got, fmt.Errorf("%v: %s", err, strings.TrimSpace(msg))
	}
	return got, nil
}}

// mpRubyV2Reader reads with Ruby's EncryptionV2 client and w's master key.
func mpRubyV2Reader(w wrapCase) mpReader {
	return mpReader{name: "ruby-v2/" + w.name, get: func(t *testing.T, bucket, key, storage string, _ map[string]string) ([]byte, error) {
		out := filepath.Join(t.TempDir(), "out")
		args := append([]string{"get-v2", "--bucket", bucket, "--key", key, "--out", out, "--storage", storage}, w.rubyKeyArgs(t)...)
		if msg, err := runPeerResult(t, args...); err != nil {
			return nil, fmt.Errorf("%v: %s", err, strings.TrimSpace(msg))
		}
		return os.ReadFile(out)
	}}
}

// mpWriter is one Uploader configuration and the clients that must read
// what it writes.
type mpWriter struct {
	name    string // for subtest and object names
	format  string // "V2" or "V3", as stored
	storage string // "metadata" or "instruction"
	client  *s3crypto.Client
	ec      map[string]string // the encryption context (KMS only)
	kms     bool
	cases   []mpCase
	readers []mpReader
}

// mpLog collects "writer | reader | cases read" lines for the final log.
type mpLog struct {
	mu   sync.Mutex
	rows map[[2]string][]string
}

func (l *mpLog) add(writer, reader, c string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rows == nil {
		l.rows = map[[2]string][]string{}
	}
	k := [2]string{writer, reader}
	l.rows[k] = append(l.rows[k], c)
}

func (l *mpLog) log(t *testing.T, title string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	keys := slices.SortedFunc(maps.Keys(l.rows), func(a, b [2]string) int {
		return strings.Compare(a[0]+"\x00"+a[1], b[0]+"\x00"+b[1])
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%s (writer | reader | objects read exactly):\n", title)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %-36s | %-44s | %d\n", k[0], k[1], len(l.rows[k]))
	}
	t.Log(b.String())
}

// mpRun uploads every case of every writer and reads each object back with
// each of the writer's readers.
func mpRun(t *testing.T, s3c *s3.Client, bucket string, writers []mpWriter, results *mpLog) {
	for _, w := range writers {
		for _, mc := range w.cases {
			t.Run(w.name+"/"+mc.String(), func(t *testing.T) {
				t.Parallel()
				key := "mp/" + w.name + "/" + mc.String()
				pt := mpPlaintextOf(t, mc.size)
				mpUpload(t, w.client, s3c, bucket, key, mc, pt, w.ec)
				so := inspectObject(t, s3c, bucket, key)
				if w.kms {
					checkKMSObject(t, so, w.format, w.storage, w.ec)
				} else if so.format != w.format || so.storage != w.storage {
					t.Fatalf("%s: stored %s/%s, want %s/%s", key, so.format, so.storage, w.format, w.storage)
				}
				mpCheckLength(t, key, so, mc)
				for _, r := range w.readers {
					got, err := r.get(t, bucket, key, w.storage, w.ec)
					if err != nil {
						t.Errorf("%s reading %s (%s/%s, %d parts): %v", r.name, key, w.format, w.storage, mc.parts(), err)
						continue
					}
					if mpCheckSum(t, r.name+" reading "+key, got, pt) {
						results.add(w.name+" ("+w.format+"/"+w.storage+")", r.name, mc.String())
					}
				}
			})
		}
	}
}

// TestMultipartKMSPeersRead: the Uploader's V2 and V3 objects, KMS-wrapped
// with an encryption context, in metadata and in an instruction file, are
// read by AWS's Go clients v3.2.0 and v4.0.0 under every commitment policy
// that allows the format (and, for V2, by Ruby's EncryptionV2 client).
func TestMultipartKMSPeersRead(t *testing.T) {
	s3c := newS3Client(t)
	kc := newKMSClient(t)
	requireRuby(t)
	bucket := newBucket(t, s3c)
	keyID := newKMSKey(t, kc)

	v2Readers := []mpReader{
		mpAWSReader(awsV3Peer(t, s3c, kc, keyID, policyForbid)),
		mpAWSReader(awsV3Peer(t, s3c, kc, keyID, policyRequireAllow)),
		mpAWSReader(awsV4Peer(t, s3c, kc, keyID, policyForbid)),
		mpAWSReader(awsV4Peer(t, s3c, kc, keyID, policyRequireAllow)),
		mpRubyKMSReader,
	}
	v3Readers := []mpReader{
		mpAWSReader(awsV3Peer(t, s3c, kc, keyID, policyRequireRequire)),
		mpAWSReader(awsV4Peer(t, s3c, kc, keyID, policyRequireAllow)),
		mpAWSReader(awsV4Peer(t, s3c, kc, keyID, policyRequireRequire)),
	}
	writer := func(name, format string, p policyCase, instruction bool, cases []mpCase, readers []mpReader) mpWriter {
		storage := "metadata"
		if instruction {
			storage = "instruction"
		}
		return mpWriter{
			name: name, format: format, storage: storage,
			client: libKMSClient(t, kc, keyID, libPolicy(p.lib, instruction)),
			ec:     kmsTestContext, kms: true, cases: cases, readers: readers,
		}
	}
	writers := []mpWriter{
		writer("kms-v2-metadata", "V2", policyForbid, false, mpAllCases(), v2Readers),
		writer("kms-v2-instruction", "V2", policyForbid, true, mpAllCases(), v2Readers),
		writer("kms-v3-metadata", "V3", policyRequireRequire, false, mpAllCases(), v3Readers),
		writer("kms-v3-instruction", "V3", policyRequireRequire, true, mpAllCases(), v3Readers),
	}
	var results mpLog
	t.Cleanup(func() { results.log(t, "multipart KMS objects") })
	mpRun(t, s3c, bucket, writers, &results)
}

// TestMultipartRubyReadsV2: the Uploader's V2 objects with AES/GCM and
// RSA-OAEP-SHA1 master keys are read by Ruby's EncryptionV2 client (which
// fetches the tag with a suffix range, here across part boundaries of a
// multipart object).
func TestMultipartRubyReadsV2(t *testing.T) {
	s3c := newS3Client(t)
	requireRuby(t)
	bucket := newBucket(t, s3c)
	aesGCM, rsaOAEP := v2Wraps[0], v2Wraps[1]
	writer := func(w wrapCase, storage string, cases []mpCase) mpWriter {
		return mpWriter{
			name: "ruby-" + w.name + "-" + storage, format: "V2", storage: storage,
			client: newCryptoClient(t, w.keyring(t), v2Options(storage)),
			cases:  cases, readers: []mpReader{mpRubyV2Reader(w)},
		}
	}
	writers := []mpWriter{
		writer(aesGCM, "metadata", mpAllCases()),
		writer(aesGCM, "instruction", mpAllCases()),
		writer(rsaOAEP, "metadata", mpSpotCases),
		writer(rsaOAEP, "instruction", mpSpotCases),
	}
	var results mpLog
	t.Cleanup(func() { results.log(t, "multipart V2 objects read by Ruby") })
	mpRun(t, s3c, bucket, writers, &results)
}

// mpStoreTampered copies the multipart object src to dst as a multipart
// upload with the same metadata and the same part boundaries (parts of
// mpPartSize stored bytes: a GCM part's ciphertext is as long as its
// plaintext, the tag rides on the last), with one bit of stored byte at
// flipped, and returns the number of parts.
func mpStoreTampered(t testing.TB, s3c *s3.Client, bucket, src, dst string, at int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(src)})
	if err != nil {
		t.Fatalf("GetObject %s: %v", src, err)
	}
	stored, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil {
		t.Fatalf("reading %s: %v", src, err)
	}
	stored[at] ^= 1
	mpu, err := s3c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(dst), Metadata: out.Metadata})
	if err != nil {
		t.Fatalf("CreateMultipartUpload %s: %v", dst, err)
	}
	var parts []types.CompletedPart
	for off, n := 0, int32(1); off < len(stored); n++ {
		end := off + mpPartSize
		if len(stored)-format.TagSize-off <= mpPartSize {
			end = len(stored) // the last part: the rest of the plaintext, and the tag
		}
		up, err := s3c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(dst),
			UploadId: mpu.UploadId, PartNumber: aws.Int32(n), Body: bytes.NewReader(stored[off:end])})
		if err != nil {
			t.Fatalf("UploadPart %s #%d: %v", dst, n, err)
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: up.ETag})
		off = end
	}
	if _, err := s3c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(dst),
		UploadId: mpu.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		t.Fatalf("CompleteMultipartUpload %s: %v", dst, err)
	}
	return len(parts)
}

// TestMultipartTamperedRefused is the negative control of the tests above:
// they pass only if the readers authenticate the whole GCM stream across
// the parts. One flipped bit in a middle part, at the first byte of the
// last part, or in the tag of an Uploader object (stored again as a 4-part
// upload) makes every reader refuse it.
func TestMultipartTamperedRefused(t *testing.T) {
	s3c := newS3Client(t)
	kc := newKMSClient(t)
	requireRuby(t)
	bucket := newBucket(t, s3c)
	keyID := newKMSKey(t, kc)
	mc := mpCase{16<<20 + 17, 4, true}
	pt := mpPlaintextOf(t, mc.size)
	stored := mc.size + format.TagSize
	flips := []struct {
		name string
		at   int
	}{{"part2", mpPartSize + 12345}, {"part4-first-byte", 3 * mpPartSize}, {"tag", stored - 1}}
	for _, f := range []struct {
		format  string
		policy  policyCase
		readers []mpReader
	}{
		{"V2", policyForbid, []mpReader{
			mpAWSReader(awsV3Peer(t, s3c, kc, keyID, policyForbid)),
			mpAWSReader(awsV4Peer(t, s3c, kc, keyID, policyForbid)),
			mpRubyKMSRawReader,
		}},
		{"V3", policyRequireRequire, []mpReader{
			mpAWSReader(awsV3Peer(t, s3c, kc, keyID, policyRequireRequire)),
			mpAWSReader(awsV4Peer(t, s3c, kc, keyID, policyRequireRequire)),
		}},
	} {
		t.Run(f.format, func(t *testing.T) {
			t.Parallel()
			key := "mp-tamper/" + f.format + "/original"
			mpUpload(t, libKMSClient(t, kc, keyID, libPolicy(f.policy.lib, false)), s3c, bucket, key, mc, pt, kmsTestContext)
			for _, flip := range flips {
				bad := "mp-tamper/" + f.format + "/" + flip.name
				if n := mpStoreTampered(t, s3c, bucket, key, bad, flip.at); n != mc.parts() {
					t.Fatalf("tampered copy has %d parts, want %d", n, mc.parts())
				}
				for _, r := range f.readers {
					got, err := r.get(t, bucket, bad, "metadata", kmsTestContext)
					switch {
					case err == nil:
						t.Errorf("%s read a %s object with a bit flipped (%s): it must refuse", r.name, f.format, flip.name)
					case !strings.Contains(err.Error(), "message authentication failed") && !strings.Contains(err.Error(), "CipherError"):
						t.Errorf("%s refused a %s object with a bit flipped (%s), but not as an authentication failure: %v", r.name, f.format, flip.name, err)
					case len(got) != 0:
						// A property of the peer, not of the object: see mpRubyKMSRawReader.
						t.Logf("%s refused a %s object with a bit flipped (%s), but only after writing %d bytes of unauthenticated plaintext: %s", r.name, f.format, flip.name, len(got), firstLine(err, bucket, bad))
					default:
						t.Logf("%s refused a %s object with a bit flipped (%s): %s", r.name, f.format, flip.name, firstLine(err, bucket, bad))
					}
				}
			}
			// The untampered original still reads.
			for _, r := range f.readers {
				got, err := r.get(t, bucket, key, "metadata", kmsTestContext)
				if err != nil {
					t.Fatalf("%s reading the original %s: %v", r.name, key, err)
				}
				mpCheckSum(t, r.name+" reading "+key, got, pt)
			}
		})
	}
}

// rangeCountingS3 is an S3 client that records the Range of every GetObject.
type rangeCountingS3 struct {
	*s3.Client
	mu     sync.Mutex
	ranges []string
}

func (r *rangeCountingS3) GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	r.mu.Lock()
	r.ranges = append(r.ranges, aws.ToString(in.Range))
	r.mu.Unlock()
	return r.Client.GetObject(ctx, in, optFns...)
}

func (r *rangeCountingS3) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.ranges
	r.ranges = nil
	return out
}

// TestMultipartDownloaderReadsAWSGo: objects written by AWS's Go clients'
// PutObject (v3.2.0: V2; v4.0.0: V2 and V3), with an encryption context,
// are read by the Downloader in ranged GETs of 1 MiB, four at once.
func TestMultipartDownloaderReadsAWSGo(t *testing.T) {
	s3c := newS3Client(t)
	kc := newKMSClient(t)
	bucket := newBucket(t, s3c)
	keyID := newKMSKey(t, kc)

	writers := []*peer{
		awsV3Peer(t, s3c, kc, keyID, policyForbid),
		awsV4Peer(t, s3c, kc, keyID, policyForbid),
		awsV4Peer(t, s3c, kc, keyID, policyRequireRequire),
	}
	const rangeSize = 1 << 20
	for _, w := range writers {
		for _, size := range []int{0, 5<<20 + 3} {
			t.Run(fmt.Sprintf("%s/%d", w.keyPart(), size), func(t *testing.T) {
				t.Parallel()
				wantFormat := "V3"
				if w.policy == policyForbid {
					wantFormat = "V2"
				}
				key := fmt.Sprintf("mp-download/%s/%d", w.keyPart(), size)
				pt := mpPlaintextOf(t, size)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				defer cancel()
				if err := w.put(ctx, bucket, key, pt.data, kmsTestContext); err != nil {
					t.Fatalf("%v PutObject %s: %v", w, key, err)
				}
				checkKMSObject(t, inspectObject(t, s3c, bucket, key), wantFormat, "metadata", kmsTestContext)

				api := &rangeCountingS3{Client: newS3Client(t)}
				kr, err := keyring.NewKMS(kc, keyID)
				if err != nil {
					t.Fatal(err)
				}
				p := materials.NewProvider(kr)
				lib, err := s3crypto.New(api, p, libPolicy(envelope.RequireEncryptAllowDecrypt, false))
				if err != nil {
					t.Fatal(err)
				}
				d := s3crypto.NewDownloader(lib, func(o *s3crypto.DownloaderOptions) {
					o.PartSize = rangeSize
					o.Concurrency = 4
				})
				h := sha256.New()
				n, err := d.Download(libWithEC(ctx, kmsTestContext), h, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				if err != nil {
					t.Fatalf("Downloader reading %v's %s object %s: %v", w, wantFormat, key, err)
				}
				if n != int64(size) || !bytes.Equal(h.Sum(nil), pt.sum[:]) {
					t.Fatalf("Downloader reading %v's %s object: %d bytes, SHA-256 %x; want %d bytes, %x", w, wantFormat, n, h.Sum(nil)[:8], size, pt.sum[:8])
				}
				ranges := api.take()
				wantRanges := (size + format.TagSize + rangeSize - 1) / rangeSize
				if len(ranges) != wantRanges || slices.Contains(ranges, "") {
					t.Errorf("Downloader made GETs with ranges %q; want %d ranged GETs of %d bytes", ranges, wantRanges, rangeSize)
				}
				if size > rangeSize && len(ranges) < 2 {
					t.Errorf("a %d-byte object was read in %d GET(s)", size, len(ranges))
				}
				t.Logf("%v's %s object (%d bytes) read by the Downloader in %d ranged GETs", w, wantFormat, size, len(ranges))
			})
		}
	}
}
