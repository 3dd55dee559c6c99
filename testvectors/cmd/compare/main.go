// Command compare measures this library against AWS's S3 Encryption Client
// for Go v4.0.0 (github.com/aws/amazon-s3-encryption-client-go/v4), and
// against the SDK's own unencrypted transfer manager, on the same objects,
// through the same S3 server and the same KMS server, in one run: wall time
// and peak RSS of a PUT and of a GET of each object. It prints Markdown
// tables with the machine it ran on (issues 6 and 15, BENCHMARKS.md).
//
// The servers are the tests' (versitygw and local-kms, see ../../README.md):
// S3ENVELOPE_S3_ENDPOINT, S3ENVELOPE_S3_ACCESS_KEY, S3ENVELOPE_S3_SECRET_KEY,
// S3ENVELOPE_S3_REGION, S3ENVELOPE_KMS_ENDPOINT, S3ENVELOPE_KMS_REGION.
// ./scripts/test exec starts them and runs a command with them set, from
// the repository root:
//
//	./scripts/test exec go -C testvectors run ./cmd/compare                # 256 MiB and 1 GiB
//	./scripts/test exec go -C testvectors run ./cmd/compare -sizes 16MiB   # a smoke test
//
// The command creates its own bucket and KMS key, and removes the bucket
// (with every object) and schedules the key's deletion when it ends.
//
// The clients (-clients; package ../../internal/xfer says more):
//
//   - s3envelope-v3 and s3envelope-segmented: s3crypto.Client writing that
//     format with keyring.NewKMS; PUT is s3crypto.Uploader.Upload (a
//     multipart upload), GET is s3crypto.Downloader.Download (parallel
//     ranged GETs; a V3 body is spooled, verified, then released, a
//     segmented one released segment by segment as each verifies).
//   - aws: AWS's v4.0.0 client.New with a KMS keyring and its defaults (V3
//     under REQUIRE_ENCRYPT_REQUIRE_DECRYPT); PUT is its PutObject (one
//     request; it reads the whole plaintext into memory and writes the
//     ciphertext to a temporary file), GET is its GetObject (it reads the
//     whole ciphertext into memory and opens it there) with the body read to
//     the end.
//   - sdk-manager: aws-sdk-go-v2's feature/s3/manager Uploader and
//     Downloader storing the plaintext unencrypted: what encryption costs is
//     measured against it. Its Downloader writes to an io.WriterAt; the
//     bytes are passed on in order to the digest as they arrive.
//
// Ours and the SDK's Uploader and Downloader get the same -part-size and
// -concurrency (default 8 MiB and 5, ours' defaults; the SDK's own default
// part is 5 MiB). All get the same S3 client settings and the same body: a
// deterministic ChaCha8 stream (math/rand/v2) that is seekable, because
// AWS's PutObject needs to learn the body's length by seeking (a plain
// io.Reader of unknown length does not work there); the seekable body also
// tells the Uploaders the size. PUT time includes generating the body; GET
// time includes computing the CRC-32C of what is read (hardware-assisted and
// cheap, so that the clients dominate), which the parent then compares with
// the generated input's. Both costs are the same for every client and are
// printed on their own. After each PUT the parent checks what is stored:
// the client's format and length, or for sdk-manager the plaintext's length
// and no envelope.
//
// Each PUT and each GET runs in a fresh child process (this program run as
// "compare op ..."), so that its peak RSS is that operation's alone; the
// time is measured inside the child, around the operation only (not process
// start or client construction). The peak RSS is the child's VmHWM
// (/proc/self/status), read when the operation ends, not the ru_maxrss that
// waiting for the child returns: Linux carries into ru_maxrss the high-water
// mark of the memory the process replaced at exec, and Go starts children
// with vfork semantics (CLONE_VM), so that memory is this parent's, and every
// child's ru_maxrss would be at least the parent's own peak.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
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

	"github.com/s3envelope/s3envelope/testvectors/internal/xfer"
)

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

const runHint = "run it under ./scripts/test exec, which starts versitygw and localkms and sets S3ENVELOPE_S3_* and S3ENVELOPE_KMS_*"

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

// newS3 returns a plain S3 client for the server; every client uses one
// made here, with the same settings.
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

// ---- child: one operation ----

// opResult is what a child reports on its standard output.
type opResult struct {
	Seconds float64 `json:"seconds"`
	Bytes   int64   `json:"bytes"`
	Digest  string  `json:"digest,omitempty"`
	// PeakRSSKiB is the child's VmHWM when the operation ended.
	PeakRSSKiB int64 `json:"peak_rss_kib"`
}

func runOp(args []string) error {
	fs := flag.NewFlagSet("compare op", flag.ExitOnError)
	client := fs.String("client", "", "one of "+strings.Join(xfer.Names, ", "))
	op := fs.String("op", "", "put or get")
	size := fs.Int64("size", 0, "plaintext bytes (put)")
	seed := fs.Uint64("seed", 1, "body seed (put)")
	bucket := fs.String("bucket", "", "bucket")
	key := fs.String("key", "", "object key")
	kmsKey := fs.String("kms-key", "", "KMS key ARN")
	partSize := fs.Int64("part-size", xfer.DefaultPartSize, "bytes per part and per ranged GET")
	concurrency := fs.Int("concurrency", xfer.DefaultConcurrency, "parts or ranged GETs in flight")
	fs.Parse(args)
	if *bucket == "" || *key == "" || *kmsKey == "" {
		return errors.New("op: -bucket, -key and -kms-key are required")
	}
	e, err := loadEnv()
	if err != nil {
		return err
	}
	c, err := xfer.New(*client, xfer.Servers{S3: newS3(e), KMS: newKMS(e), KMSKey: *kmsKey},
		xfer.Options{PartSize: *partSize, Concurrency: *concurrency})
	if err != nil {
		return err
	}
	ctx := context.Background()
	var res opResult
	switch *op {
	case "put":
		body := xfer.NewGen(*seed, *size)
		start := time.Now()
		err := c.Upload(ctx, *bucket, *key, body)
		res.Seconds = time.Since(start).Seconds()
		if err != nil {
			return err
		}
		res.Bytes = *size
	case "get":
		h := xfer.NewCRC()
		start := time.Now()
		n, err := c.Download(ctx, *bucket, *key, h)
		res.Seconds = time.Since(start).Seconds()
		if err != nil {
			return err
		}
		res.Bytes = n
		res.Digest = hex.EncodeToString(h.Sum(nil))
	default:
		return fmt.Errorf("op: unknown -op %q", *op)
	}
	if res.PeakRSSKiB, err = peakRSS(); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// peakRSS returns this process's peak resident set size in KiB: VmHWM, the
// high-water mark of its own memory since exec.
func peakRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("peak RSS (VmHWM in /proc/self/status is needed: Linux): %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("peak RSS: bad VmHWM line %q", line)
			}
			return kib, nil
		}
	}
	return 0, errors.New("peak RSS: no VmHWM in /proc/self/status")
}

// ---- parent ----

// measurement is one child's result.
type measurement struct{ opResult }

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
	if m.PeakRSSKiB <= 0 {
		return m, fmt.Errorf("compare op %s: no peak RSS in %q", strings.Join(args, " "), stdout.String())
	}
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

const defaultSizes = "256MiB,1GiB"

func runParent(args []string) error {
	fs := flag.NewFlagSet("compare", flag.ExitOnError)
	sizesFlag := fs.String("sizes", defaultSizes, "comma-separated object sizes (bytes, or with KiB, MiB, GiB)")
	clientsFlag := fs.String("clients", strings.Join(xfer.Names, ","), "comma-separated clients: "+strings.Join(xfer.Names, ", "))
	runs := fs.Int("runs", 1, "runs per size and client (the median time and the largest peak RSS are shown)")
	seed := fs.Uint64("seed", 1, "seed of the generated bodies")
	partSizeFlag := fs.String("part-size", xfer.FormatSize(xfer.DefaultPartSize), "bytes per part and per ranged GET, for "+xfer.SDKManager+" and s3envelope's Uploader and Downloader")
	concurrency := fs.Int("concurrency", xfer.DefaultConcurrency, "parts or ranged GETs in flight, for "+xfer.SDKManager+" and s3envelope's Uploader and Downloader")
	fs.Parse(args)

	var sizes []int64
	for s := range strings.SplitSeq(*sizesFlag, ",") {
		n, err := xfer.ParseSize(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		sizes = append(sizes, n)
	}
	clients := strings.Split(*clientsFlag, ",")
	for _, c := range clients {
		if _, ok := xfer.Label[c]; !ok {
			return fmt.Errorf("unknown client %q (want some of %s)", c, strings.Join(xfer.Names, ", "))
		}
	}
	if *runs < 1 {
		return errors.New("-runs must be at least 1")
	}
	partSize, err := xfer.ParseSize(*partSizeFlag)
	if err != nil {
		return err
	}
	if partSize < 5<<20 || *concurrency < 1 {
		return errors.New("-part-size must be at least 5 MiB (S3's smallest part) and -concurrency at least 1")
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
		if _, err := io.Copy(io.Discard, xfer.NewGen(*seed, size)); err != nil {
			return err
		}
		genS := time.Since(start).Seconds()
		want, err := xfer.Digest(*seed, size)
		if err != nil {
			return err
		}
		buf := make([]byte, min(size, 64<<20))
		io.ReadFull(xfer.NewGen(*seed, size), buf)
		h := xfer.NewCRC()
		start = time.Now()
		for left := size; left > 0; left -= int64(len(buf)) {
			h.Write(buf[:min(left, int64(len(buf)))])
		}
		baselines[size] = baseline{genS, time.Since(start).Seconds()}
		buf = nil

		for _, client := range clients {
			var puts, gets []measurement
			for r := range *runs {
				key := fmt.Sprintf("%s-%d-%d", client, size, r)
				common := []string{"-client", client, "-bucket", bucket, "-key", key, "-kms-key", keyARN,
					"-part-size", strconv.FormatInt(partSize, 10), "-concurrency", strconv.Itoa(*concurrency)}
				// Each operation starts with no dirty pages left by the
				// one before (the server's object, AWS's temporary
				// file, the Downloader's spool).
				syscall.Sync()
				log.Printf("%s %s: PUT (run %d/%d)", xfer.FormatSize(size), client, r+1, *runs)
				put, err := child(self, append(common, "-op", "put", "-size", strconv.FormatInt(size, 10), "-seed", strconv.FormatUint(*seed, 10))...)
				if err != nil {
					return err
				}
				if err := xfer.CheckStored(ctx, s3c, client, bucket, key, size); err != nil {
					return fmt.Errorf("%s %s: %w", xfer.FormatSize(size), client, err)
				}
				syscall.Sync()
				log.Printf("%s %s: GET (run %d/%d)", xfer.FormatSize(size), client, r+1, *runs)
				get, err := child(self, append(common, "-op", "get")...)
				if err != nil {
					return err
				}
				if get.Bytes != size || get.Digest != want {
					return fmt.Errorf("%s %s: GET returned %d bytes with CRC-32C %s; want %d bytes with %s", xfer.FormatSize(size), client, get.Bytes, get.Digest, size, want)
				}
				if _, err := s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
					return fmt.Errorf("DeleteObject %s/%s: %w", bucket, key, err)
				}
				log.Printf("%s %s: PUT %.2f s, %.0f MiB; GET %.2f s, %.0f MiB", xfer.FormatSize(size), client,
					put.Seconds, mib(put.PeakRSSKiB), get.Seconds, mib(get.PeakRSSKiB))
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
	fmt.Fprintf(w, "%d run(s) per size and client (median time, largest peak RSS); ", *runs)
	fmt.Fprintf(w, "Uploader and Downloader part size %s, concurrency %d.\n\n", xfer.FormatSize(partSize), *concurrency)
	fmt.Fprintf(w, "Command: `./scripts/test exec go -C testvectors run ./cmd/compare")
	if *sizesFlag != defaultSizes {
		fmt.Fprintf(w, " -sizes %s", *sizesFlag)
	}
	if *clientsFlag != strings.Join(xfer.Names, ",") {
		fmt.Fprintf(w, " -clients %s", *clientsFlag)
	}
	if *runs != 1 {
		fmt.Fprintf(w, " -runs %d", *runs)
	}
	if partSize != xfer.DefaultPartSize {
		fmt.Fprintf(w, " -part-size %s", *partSizeFlag)
	}
	if *concurrency != xfer.DefaultConcurrency {
		fmt.Fprintf(w, " -concurrency %d", *concurrency)
	}
	fmt.Fprintf(w, "`\n\n")
	fmt.Fprintln(w, "| size | client | PUT s | PUT MB/s | PUT peak RSS MiB | GET s | GET MB/s | GET peak RSS MiB |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %.2f | %.0f | %.0f | %.2f | %.0f | %.0f |\n", xfer.FormatSize(r.size), xfer.Label[r.client],
			r.putS, mbps(r.size, r.putS), r.putRSSMiB, r.getS, mbps(r.size, r.getS), r.getRSSMiB)
	}
	find := func(size int64, client string) row {
		for _, r := range rows {
			if r.size == size && r.client == client {
				return r
			}
		}
		panic("no row")
	}

	if slices.Contains(clients, xfer.SDKManager) {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Encrypted against unencrypted ("+xfer.SDKManager+"): throughput encrypted ÷ unencrypted (1 is no cost; 0.80 is 20% slower), peak RSS encrypted ÷ unencrypted:")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| size | client | PUT throughput | GET throughput | PUT peak RSS | GET peak RSS |")
		fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|")
		for _, size := range sizes {
			plain := find(size, xfer.SDKManager)
			for _, client := range clients {
				if client == xfer.SDKManager {
					continue
				}
				r := find(size, client)
				fmt.Fprintf(w, "| %s | %s | %.2f× | %.2f× | %.1f× | %.1f× |\n", xfer.FormatSize(size), xfer.Label[client],
					plain.putS/r.putS, plain.getS/r.getS, r.putRSSMiB/plain.putRSSMiB, r.getRSSMiB/plain.getRSSMiB)
			}
		}
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "Included in every PUT: generating the body; in every GET: its CRC-32C (the same for every client):")
	fmt.Fprintln(w)
	for _, size := range sizes {
		b := baselines[size]
		fmt.Fprintf(w, "- %s: generating %.2f s, CRC-32C %.2f s\n", xfer.FormatSize(size), b.genS, b.hashS)
	}

	if !slices.Contains(clients, xfer.LibV3) || !slices.Contains(clients, xfer.AWSV4) {
		return nil
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "s3envelope V3 against AWS (AWS ÷ s3envelope: above 1 is s3envelope faster or smaller):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| size | PUT time | PUT peak RSS | GET time | GET peak RSS |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	for _, size := range sizes {
		lib, a := find(size, xfer.LibV3), find(size, xfer.AWSV4)
		fmt.Fprintf(w, "| %s | %.2f× | %.1f× | %.2f× | %.1f× |\n", xfer.FormatSize(size),
			a.putS/lib.putS, a.putRSSMiB/lib.putRSSMiB, a.getS/lib.getS, a.getRSSMiB/lib.getRSSMiB)
	}
	const target = 1 << 30
	if slices.Contains(sizes, target) {
		lib, a := find(target, xfer.LibV3), find(target, xfer.AWSV4)
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

// mbps is throughput in MB/s (10^6 bytes, as go test's benchmarks report it).
func mbps(size int64, seconds float64) float64 { return float64(size) / 1e6 / seconds }

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
		m = max(m, x.PeakRSSKiB)
	}
	return mib(m)
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
