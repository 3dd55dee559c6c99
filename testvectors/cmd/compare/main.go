// Command compare measures this library against AWS's S3 Encryption Client
// for Go v4.0.0 (github.com/aws/amazon-s3-encryption-client-go/v4) on the
// same objects, through the same S3 server and the same KMS server, in one
// run: wall time and peak RSS of a PUT and of a GET of each object, and
// prints a Markdown table with the machine it ran on (issue 6,
// BENCHMARKS.md).
//
//	cd testvectors && go run ./cmd/compare                 # 256 MiB and 1 GiB
//	cd testvectors && go run ./cmd/compare -sizes 16MiB    # a smoke test
//
// The servers are the tests' (versitygw and local-kms, see ../../README.md):
// S3ENVELOPE_S3_ENDPOINT, S3ENVELOPE_S3_ACCESS_KEY, S3ENVELOPE_S3_SECRET_KEY,
// S3ENVELOPE_S3_REGION, S3ENVELOPE_KMS_ENDPOINT, S3ENVELOPE_KMS_REGION. The
// command creates its own bucket and KMS key, and removes the bucket (with
// every object) and schedules the key's deletion when it ends.
//
// What is compared, for each size and client:
//
//   - s3envelope: s3crypto.Client with its defaults (format V3 under
//     RequireEncryptRequireDecrypt) and keyring.NewKMS; PUT is
//     s3crypto.Uploader.Upload with the default PartSize and Concurrency (a
//     multipart upload), GET is s3crypto.Downloader.Download (parallel ranged
//     GETs; the V3 body is spooled, verified, then released).
//   - aws: AWS's v4.0.0 client.New with a KMS keyring and its defaults (V3
//     under REQUIRE_ENCRYPT_REQUIRE_DECRYPT); PUT is its PutObject (one
//     request; it reads the whole plaintext into memory and writes the
//     ciphertext to a temporary file), GET is its GetObject (it reads the
//     whole ciphertext into memory and opens it there) with the body read to
//     the end.
//
// Both get the same S3 client settings and the same body: a deterministic
// ChaCha8 stream (math/rand/v2) that is seekable, because AWS's PutObject
// needs to learn the body's length by seeking (a plain io.Reader of unknown
// length does not work there); the seekable body also tells the Uploader the
// size. PUT time includes generating the body; GET time includes computing
// the CRC-32C of what is read (hardware-assisted and cheap, so that the
// clients dominate), which the parent then compares with the generated
// input's. Both costs are the same for the two clients and are printed on
// their own.
//
// Each PUT and each GET runs in a fresh child process (this program run as
// "compare op ..."), so that its peak RSS (getrusage ru_maxrss of the child)
// is that operation's alone; the time is measured inside the child, around
// the operation only (not process start or client construction).
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"log"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	v4client "github.com/aws/amazon-s3-encryption-client-go/v4/client"
	v4materials "github.com/aws/amazon-s3-encryption-client-go/v4/materials"

	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
	"github.com/s3envelope/s3envelope/s3crypto"
)

const (
	clientLib = "s3envelope"
	clientAWS = "aws"
)

// clientLabel is how the table names each client.
var clientLabel = map[string]string{
	clientLib: "s3envelope (Uploader / Downloader)",
	clientAWS: "AWS S3EC Go v4.0.0 (PutObject / GetObject)",
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("compare: ")
	if len(os.Args) > 1 && os.Args[1] == "op" {
		if err := runOp(os.Args[2:]); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := runParent(os.Args[1:]); err != nil {
		log.Fatal(err)
	}
}

// ---- environment and clients ----

type env struct {
	s3Endpoint, accessKey, secretKey, s3Region string
	kmsEndpoint, kmsRegion                     string
}

const runHint = "run ./scripts/test once, or start versitygw and localkms and set S3ENVELOPE_S3_* and S3ENVELOPE_KMS_* as it does"

func loadEnv() (env, error) {
	e := env{
		s3Endpoint:  os.Getenv("S3ENVELOPE_S3_ENDPOINT"),
		accessKey:   os.Getenv("S3ENVELOPE_S3_ACCESS_KEY"),
		secretKey:   os.Getenv("S3ENVELOPE_S3_SECRET_KEY"),
		s3Region:    os.Getenv("S3ENVELOPE_S3_REGION"),
		kmsEndpoint: os.Getenv("S3ENVELOPE_KMS_ENDPOINT"),
		kmsRegion:   os.Getenv("S3ENVELOPE_KMS_REGION"),
	}
	if e.s3Endpoint == "" || e.accessKey == "" || e.secretKey == "" || e.kmsEndpoint == "" {
		return e, fmt.Errorf("S3ENVELOPE_S3_ENDPOINT, S3ENVELOPE_S3_ACCESS_KEY, S3ENVELOPE_S3_SECRET_KEY or S3ENVELOPE_KMS_ENDPOINT is not set; %s", runHint)
	}
	if e.s3Region == "" {
		e.s3Region = "us-east-1"
	}
	if e.kmsRegion == "" {
		e.kmsRegion = "us-east-1"
	}
	return e, nil
}

// newS3 returns a plain S3 client for the server; both clients wrap one made
// here, with the same settings.
func newS3(e env) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(e.s3Endpoint),
		Region:       e.s3Region,
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(e.accessKey, e.secretKey, ""),
	})
}

// newKMS returns a KMS client for local-kms (which checks no signatures).
func newKMS(e env) *kms.Client {
	return kms.New(kms.Options{
		BaseEndpoint: aws.String(e.kmsEndpoint),
		Region:       e.kmsRegion,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDLOCALKMS", "local-kms-checks-no-signatures", ""),
	})
}

// ---- the body ----

// genBlock is the unit in which the body is generated: block i is the
// ChaCha8 stream seeded with (seed, i), so any offset can be reached.
const genBlock = 64 << 10

// gen is size deterministic pseudo-random bytes, readable and seekable.
type gen struct {
	seed      uint64
	size, off int64
	blk       int64 // the block in buf, or -1
	buf       []byte
}

func newGen(seed uint64, size int64) *gen {
	return &gen{seed: seed, size: size, blk: -1, buf: make([]byte, genBlock)}
}

func (g *gen) fill(blk int64) {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[0:], g.seed)
	binary.LittleEndian.PutUint64(s[8:], uint64(blk))
	c := mrand.NewChaCha8(s)
	c.Read(g.buf)
	g.blk = blk
}

func (g *gen) Read(p []byte) (int, error) {
	if g.off >= g.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && g.off < g.size {
		if blk := g.off / genBlock; blk != g.blk {
			g.fill(blk)
		}
		i := int(g.off % genBlock)
		end := genBlock
		if left := g.size - g.off; left < int64(genBlock-i) {
			end = i + int(left)
		}
		k := copy(p[n:], g.buf[i:end])
		n += k
		g.off += int64(k)
	}
	return n, nil
}

func (g *gen) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = g.off + offset
	case io.SeekEnd:
		abs = g.size + offset
	default:
		return 0, errors.New("gen: bad whence")
	}
	if abs < 0 {
		return 0, errors.New("gen: negative offset")
	}
	g.off = abs
	return abs, nil
}

// ---- child: one operation ----

// opResult is what a child reports on its standard output.
type opResult struct {
	Seconds float64 `json:"seconds"`
	Bytes   int64   `json:"bytes"`
	Digest  string  `json:"digest,omitempty"`
}

func runOp(args []string) error {
	fs := flag.NewFlagSet("compare op", flag.ExitOnError)
	client := fs.String("client", "", "s3envelope or aws")
	op := fs.String("op", "", "put or get")
	size := fs.Int64("size", 0, "plaintext bytes (put)")
	seed := fs.Uint64("seed", 1, "body seed (put)")
	bucket := fs.String("bucket", "", "bucket")
	key := fs.String("key", "", "object key")
	kmsKey := fs.String("kms-key", "", "KMS key ARN")
	fs.Parse(args)
	if *bucket == "" || *key == "" || *kmsKey == "" {
		return errors.New("op: -bucket, -key and -kms-key are required")
	}
	e, err := loadEnv()
	if err != nil {
		return err
	}
	s3c, kc := newS3(e), newKMS(e)
	ctx := context.Background()
	get := &s3.GetObjectInput{Bucket: bucket, Key: key}
	put := &s3.PutObjectInput{Bucket: bucket, Key: key, Body: newGen(*seed, *size)}
	var res opResult
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))

	switch *client {
	case clientLib:
		kr, err := keyring.NewKMS(kc, *kmsKey)
		if err != nil {
			return err
		}
		p := materials.NewProvider(kr)
		c, err := s3crypto.New(s3c, p) // defaults: V3, RequireEncryptRequireDecrypt
		if err != nil {
			return err
		}
		switch *op {
		case "put":
			up := s3crypto.NewUploader(c) // default PartSize and Concurrency
			start := time.Now()
			out, err := up.Upload(ctx, put)
			res.Seconds = time.Since(start).Seconds()
			if err != nil {
				return err
			}
			res.Bytes = out.Size
		case "get":
			d := s3crypto.NewDownloader(c) // default PartSize and Concurrency
			start := time.Now()
			n, err := d.Download(ctx, h, get)
			res.Seconds = time.Since(start).Seconds()
			if err != nil {
				return err
			}
			res.Bytes = n
			res.Digest = hex.EncodeToString(h.Sum(nil))
		default:
			return fmt.Errorf("op: unknown -op %q", *op)
		}
	case clientAWS:
		cmm, err := v4materials.NewCryptographicMaterialsManager(v4materials.NewKmsKeyring(kc, *kmsKey))
		if err != nil {
			return err
		}
		c, err := v4client.New(s3c, cmm, func(o *v4client.EncryptionClientOptions) {
			o.Logger = log.New(io.Discard, "", 0) // defaults otherwise: V3, REQUIRE_ENCRYPT_REQUIRE_DECRYPT
		})
		if err != nil {
			return err
		}
		switch *op {
		case "put":
			start := time.Now()
			_, err := c.PutObject(ctx, put)
			res.Seconds = time.Since(start).Seconds()
			if err != nil {
				return err
			}
			res.Bytes = *size
		case "get":
			start := time.Now()
			out, err := c.GetObject(ctx, get)
			if err != nil {
				return err
			}
			n, err := io.Copy(h, out.Body)
			out.Body.Close()
			res.Seconds = time.Since(start).Seconds()
			if err != nil {
				return err
			}
			res.Bytes = n
			res.Digest = hex.EncodeToString(h.Sum(nil))
		default:
			return fmt.Errorf("op: unknown -op %q", *op)
		}
	default:
		return fmt.Errorf("op: unknown -client %q", *client)
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// ---- parent ----

// measurement is one child's result and its peak RSS.
type measurement struct {
	opResult
	MaxRSSKiB int64
}

// child runs one operation in a fresh process.
func child(self string, args ...string) (measurement, error) {
	cmd := exec.Command(self, append([]string{"op"}, args...)...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return measurement{}, fmt.Errorf("compare op %s: %w", strings.Join(args, " "), err)
	}
	var m measurement
	if err := json.Unmarshal(stdout.Bytes(), &m.opResult); err != nil {
		return m, fmt.Errorf("compare op %s: bad output %q: %w", strings.Join(args, " "), stdout.String(), err)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return m, errors.New("no rusage for the child (ru_maxrss is needed: Linux)")
	}
	m.MaxRSSKiB = ru.Maxrss // kilobytes on Linux
	return m, nil
}

// row is one client at one size: the median time and the largest peak RSS
// over the runs.
type row struct {
	size                 int64
	client               string
	putS, getS           float64
	putRSSMiB, getRSSMiB float64
}

func runParent(args []string) error {
	fs := flag.NewFlagSet("compare", flag.ExitOnError)
	sizesFlag := fs.String("sizes", "256MiB,1GiB", "comma-separated object sizes (bytes, or with KiB, MiB, GiB)")
	clientsFlag := fs.String("clients", clientLib+","+clientAWS, "comma-separated clients: "+clientLib+", "+clientAWS)
	runs := fs.Int("runs", 1, "runs per size and client (the median time and the largest peak RSS are shown)")
	seed := fs.Uint64("seed", 1, "seed of the generated bodies")
	fs.Parse(args)

	var sizes []int64
	for s := range strings.SplitSeq(*sizesFlag, ",") {
		n, err := parseSize(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		sizes = append(sizes, n)
	}
	clients := strings.Split(*clientsFlag, ",")
	for _, c := range clients {
		if _, ok := clientLabel[c]; !ok {
			return fmt.Errorf("unknown client %q", c)
		}
	}
	if *runs < 1 {
		return errors.New("-runs must be at least 1")
	}
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	e, err := loadEnv()
	if err != nil {
		return err
	}
	// AWS's client reads instruction files through an S3 client from the
	// default configuration; none are read here, but keep the machine's AWS
	// configuration out of the children all the same.
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_S3":         e.s3Endpoint,
		"AWS_ACCESS_KEY_ID":           e.accessKey,
		"AWS_SECRET_ACCESS_KEY":       e.secretKey,
		"AWS_REGION":                  e.s3Region,
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		os.Setenv(k, v)
	}
	for _, k := range []string{"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"} {
		os.Unsetenv(k)
	}

	ctx := context.Background()
	s3c, kc := newS3(e), newKMS(e)
	bucket, err := createBucket(ctx, s3c)
	if err != nil {
		return err
	}
	defer removeBucket(ctx, s3c, bucket)
	kout, err := kc.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("s3envelope testvectors/cmd/compare")})
	if err != nil {
		return fmt.Errorf("KMS CreateKey: %w; %s", err, runHint)
	}
	keyARN := aws.ToString(kout.KeyMetadata.Arn)
	defer func() {
		if _, err := kc.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(keyARN), PendingWindowInDays: aws.Int32(7)}); err != nil {
			log.Printf("warning: scheduling the deletion of KMS key %s: %v", keyARN, err)
		}
	}()

	type baseline struct{ genS, hashS float64 }
	baselines := map[int64]baseline{}
	var rows []row
	for _, size := range sizes {
		// The expected digest, and what generating and hashing cost alone.
		start := time.Now()
		if _, err := io.Copy(io.Discard, newGen(*seed, size)); err != nil {
			return err
		}
		genS := time.Since(start).Seconds()
		h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
		if _, err := io.Copy(h, newGen(*seed, size)); err != nil {
			return err
		}
		want := hex.EncodeToString(h.Sum(nil))
		buf := make([]byte, min(size, 64<<20))
		io.ReadFull(newGen(*seed, size), buf)
		start = time.Now()
		h.Reset()
		for left := size; left > 0; left -= int64(len(buf)) {
			h.Write(buf[:min(left, int64(len(buf)))])
		}
		baselines[size] = baseline{genS, time.Since(start).Seconds()}

		for _, client := range clients {
			var puts, gets []measurement
			for r := range *runs {
				key := fmt.Sprintf("%s-%d-%d", client, size, r)
				common := []string{"-client", client, "-bucket", bucket, "-key", key, "-kms-key", keyARN}
				// Each operation starts with no dirty pages left by the
				// one before (the server's object, AWS's temporary
				// file, the Downloader's spool).
				syscall.Sync()
				log.Printf("%s %s: PUT (run %d/%d)", formatSize(size), client, r+1, *runs)
				put, err := child(self, append(common, "-op", "put", "-size", strconv.FormatInt(size, 10), "-seed", strconv.FormatUint(*seed, 10))...)
				if err != nil {
					return err
				}
				if err := checkStored(ctx, s3c, bucket, key, size); err != nil {
					return fmt.Errorf("%s %s: %w", formatSize(size), client, err)
				}
				syscall.Sync()
				log.Printf("%s %s: GET (run %d/%d)", formatSize(size), client, r+1, *runs)
				get, err := child(self, append(common, "-op", "get")...)
				if err != nil {
					return err
				}
				if get.Bytes != size || get.Digest != want {
					return fmt.Errorf("%s %s: GET returned %d bytes with CRC-32C %s; want %d bytes with %s", formatSize(size), client, get.Bytes, get.Digest, size, want)
				}
				if _, err := s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
					return fmt.Errorf("DeleteObject %s/%s: %w", bucket, key, err)
				}
				log.Printf("%s %s: PUT %.2f s, %.0f MiB; GET %.2f s, %.0f MiB", formatSize(size), client,
					put.Seconds, mib(put.MaxRSSKiB), get.Seconds, mib(get.MaxRSSKiB))
				puts, gets = append(puts, put), append(gets, get)
			}
			rows = append(rows, row{
				size: size, client: client,
				putS: medianSeconds(puts), putRSSMiB: maxRSS(puts),
				getS: medianSeconds(gets), getRSSMiB: maxRSS(gets),
			})
		}
	}

	// The report.
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprintf(w, "Machine: %s\n\n", machine())
	fmt.Fprintf(w, "Servers: versitygw (posix backend, %s) and local-kms (%s), on loopback; ", e.s3Endpoint, e.kmsEndpoint)
	fmt.Fprintf(w, "%d run(s) per size and client (median time, largest peak RSS).\n\n", *runs)
	fmt.Fprintf(w, "Command: `cd testvectors && go run ./cmd/compare")
	if *sizesFlag != "256MiB,1GiB" {
		fmt.Fprintf(w, " -sizes %s", *sizesFlag)
	}
	if *runs != 1 {
		fmt.Fprintf(w, " -runs %d", *runs)
	}
	fmt.Fprintf(w, "`\n\n")
	fmt.Fprintln(w, "| size | client | PUT s | PUT peak RSS MiB | GET s | GET peak RSS MiB |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %.2f | %.0f | %.2f | %.0f |\n", formatSize(r.size), clientLabel[r.client], r.putS, r.putRSSMiB, r.getS, r.getRSSMiB)
	}
	if !slices.Contains(clients, clientLib) || !slices.Contains(clients, clientAWS) {
		return nil
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "s3envelope against AWS (AWS ÷ s3envelope: above 1 is s3envelope faster or smaller):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| size | PUT time | PUT peak RSS | GET time | GET peak RSS |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	find := func(size int64, client string) row {
		for _, r := range rows {
			if r.size == size && r.client == client {
				return r
			}
		}
		panic("no row")
	}
	for _, size := range sizes {
		lib, a := find(size, clientLib), find(size, clientAWS)
		fmt.Fprintf(w, "| %s | %.2f× | %.1f× | %.2f× | %.1f× |\n", formatSize(size),
			a.putS/lib.putS, a.putRSSMiB/lib.putRSSMiB, a.getS/lib.getS, a.getRSSMiB/lib.getRSSMiB)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Included in every PUT: generating the body; in every GET: its CRC-32C (the same for both clients):")
	fmt.Fprintln(w)
	for _, size := range sizes {
		b := baselines[size]
		fmt.Fprintf(w, "- %s: generating %.2f s, CRC-32C %.2f s\n", formatSize(size), b.genS, b.hashS)
	}
	const target = 1 << 30
	if slices.Contains(sizes, target) {
		lib, a := find(target, clientLib), find(target, clientAWS)
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Target on 1 GiB (issue 6): ≥ 2× faster and ≥ 10× less memory than AWS's client.")
		fmt.Fprintln(w)
		for _, op := range []struct {
			name       string
			speed, mem float64
		}{
			{"PUT", a.putS / lib.putS, a.putRSSMiB / lib.putRSSMiB},
			{"GET", a.getS / lib.getS, a.getRSSMiB / lib.getRSSMiB},
		} {
			fmt.Fprintf(w, "- %s: %.2f× faster (%s), %.1f× less memory (%s)\n", op.name,
				op.speed, met(op.speed >= 2), op.mem, met(op.mem >= 10))
		}
	}
	return nil
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

func medianSeconds(ms []measurement) float64 {
	s := make([]float64, len(ms))
	for i, m := range ms {
		s[i] = m.Seconds
	}
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func maxRSS(ms []measurement) float64 {
	var m int64
	for _, x := range ms {
		m = max(m, x.MaxRSSKiB)
	}
	return mib(m)
}

// checkStored checks that the object is V3 (content algorithm 115, the
// key-committing suite) and holds the plaintext plus the 16-byte tag.
func checkStored(ctx context.Context, c *s3.Client, bucket, key string, size int64) error {
	out, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("HeadObject %s/%s: %w", bucket, key, err)
	}
	if got := out.Metadata["x-amz-c"]; got != "115" {
		return fmt.Errorf("stored object %s is not V3: x-amz-c = %q", key, got)
	}
	if got := aws.ToInt64(out.ContentLength); got != size+16 {
		return fmt.Errorf("stored object %s holds %d bytes; want %d", key, got, size+16)
	}
	return nil
}

func createBucket(ctx context.Context, c *s3.Client) (string, error) {
	var b [6]byte
	rand.Read(b[:])
	name := "s3env-cmp-" + hex.EncodeToString(b[:])
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		return "", fmt.Errorf("CreateBucket %s: %w; %s", name, err, runHint)
	}
	return name, nil
}

// removeBucket deletes every object and unfinished upload, then the bucket.
func removeBucket(ctx context.Context, c *s3.Client, bucket string) {
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			log.Printf("warning: cleanup: ListObjectsV2 %s: %v", bucket, err)
			break
		}
		for _, o := range page.Contents {
			if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: o.Key}); err != nil {
				log.Printf("warning: cleanup: DeleteObject %s/%s: %v", bucket, aws.ToString(o.Key), err)
			}
		}
	}
	if mpu, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)}); err == nil {
		for _, u := range mpu.Uploads {
			c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: u.Key, UploadId: u.UploadId})
		}
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
		log.Printf("warning: cleanup: DeleteBucket %s: %v", bucket, err)
	}
}

// machine describes the CPU, memory, kernel and Go version.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				if kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64); err == nil {
					mem = fmt.Sprintf(", %.1f GiB RAM", float64(kib)/(1<<20))
				}
			}
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%s, nproc %d%s%s, %s %s/%s", model, runtime.NumCPU(), mem, kernel, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q (want e.g. 16MiB, 1GiB or a byte count)", s)
	}
	return n * mult, nil
}

func formatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
