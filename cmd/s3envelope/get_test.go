package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// put stores data with the command, or fails the test.
func (c *cli) put(k keyFile, key string, data []byte, flags ...string) {
	c.t.Helper()
	wk := k.path
	if k.pub != "" {
		wk = k.pub
	}
	args := append([]string{"put", "--quiet", "--key", wk, "--desc", k.desc}, flags...)
	requireExit(c.t, c.run(data, append(args, "-", c.uri(key))...), exitOK)
}

// corrupt flips one bit of an object's stored body, at the offset at
// picks, keeping its metadata: what a bad disk or a meddler would do.
func (c *cli) corrupt(key string, at func(size int) int) {
	c.t.Helper()
	ctx := context.Background()
	out, err := c.admin.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(key)})
	if err != nil {
		c.t.Fatal(err)
	}
	body, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil {
		c.t.Fatal(err)
	}
	body[at(len(body))] ^= 0x20
	if _, err := c.admin.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(c.bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		Metadata: out.Metadata, ContentType: out.ContentType,
	}); err != nil {
		c.t.Fatal(err)
	}
}

// requireNoDownloads fails if the directory holds a file named like the
// download or like get's temporary files.
func (c *cli) requireNoDownloads(name string) {
	c.t.Helper()
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == name || strings.Contains(e.Name(), ".s3envelope-partial") {
			c.t.Fatalf("a failed get left %s behind", e.Name())
		}
	}
}

// TestGetCorrupted: an object whose stored body changed does not open.
// get writes no file at all (nor leaves its temporary file), cat writes
// nothing of a V2 or V3 object, and of a segmented object only the
// segments before the damage, each authenticated; exit 1 and one line
// that says authentication failed.
func TestGetCorrupted(t *testing.T) {
	c := newS3CLI(t)
	k := c.aesKey("a.key")
	data := randomBytes(t, 300<<10+11)
	for _, tc := range []struct {
		format string
		flags  []string
	}{
		{"V3", nil},
		{"V2", []string{"--format", "v2", "--instruction-file"}},
		{"segmented", []string{"--format", "segmented"}},
	} {
		key := "corrupt-" + tc.format
		c.put(k, key, data, tc.flags...)
		c.corrupt(key, func(n int) int { return n * 2 / 3 })

		r := c.run(nil, "get", "--key", k.path, c.uri(key), key)
		requireExit(t, r, exitFailed, "s3envelope get: ", "authentication failed")
		requireOneLineError(t, r)
		c.requireNoDownloads(key)

		r = c.run(nil, "cat", "--quiet", "--key", k.path, c.uri(key))
		requireExit(t, r, exitFailed, "s3envelope cat: ", "authentication failed")
		requireOneLineError(t, r)
		if tc.format != "segmented" {
			if r.stdout != "" {
				t.Fatalf("cat of a corrupted %s object released %d bytes", tc.format, len(r.stdout))
			}
		} else if len(r.stdout) >= len(data) || len(r.stdout)%(64<<10) != 0 || !bytes.Equal([]byte(r.stdout), data[:len(r.stdout)]) {
			t.Fatalf("cat of a corrupted segmented object released %d bytes: want whole authenticated segments before the damage", len(r.stdout))
		}

		r = c.run(nil, "inspect", "--json", "--verify", "--key", k.path, c.uri(key))
		requireExit(t, r, exitFailed, "does not verify", "authentication failed")
		ins := decodeJSON[inspectResult](t, r)
		if ins.Verified == nil || *ins.Verified || !strings.Contains(ins.VerifyError, "authentication failed") {
			t.Fatalf("inspect --verify of a corrupted object: %+v", ins)
		}
		requireNoSecrets(t, k.secrets, r)
	}
}

// TestGetWrongKey: the wrong master key does not open an object (exit 1),
// whether its description was given or taken from the object; a key whose
// description matches nothing, or of the wrong kind, is named as such; an
// RSA public key cannot read (exit 2).
func TestGetWrongKey(t *testing.T) {
	c := newS3CLI(t)
	right, wrong := c.aesKey("right.key"), c.aesKey("wrong.key")
	team, other := c.rsaKey("team"), c.rsaKey("other")
	data := randomBytes(t, 1000)
	c.put(right, "aes", data)
	c.put(team, "rsa", data, "--format", "segmented")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--key", wrong.path, "--desc", right.desc, c.uri("aes")}, exitFailed, "authentication failed"},
		{[]string{"--key", wrong.path, c.uri("aes")}, exitFailed, "authentication failed"},
		{[]string{"--key", right.path, "--desc", "key=nobody", c.uri("aes")}, exitFailed, `no master key matches the description: {"key":"right.key"}`},
		{[]string{"--key", other.path, c.uri("rsa")}, exitFailed, "authentication failed"},
		{[]string{"--key", right.path, c.uri("rsa")}, exitFailed, "wrapped by an RSA key (RSA-OAEP-SHA1), and --key " + right.path + " is an AES key"},
		{[]string{"--key", team.pub, c.uri("rsa")}, exitUsage, "this is an RSA public key, which can only encrypt: give the private key to read"},
	} {
		r := c.run(nil, append([]string{"get"}, append(tc.args, "out")...)...)
		requireExit(t, r, tc.code, "s3envelope get: ", tc.want)
		requireOneLineError(t, r)
		c.requireNoDownloads("out")
		requireNoSecrets(t, append(append(append(right.secrets, wrong.secrets...), team.secrets...), other.secrets...), r)
	}
	// Given both keys, the provider finds the right one by description.
	r := c.run(nil, "cat", "--key", wrong.path, "--desc", wrong.desc, "--key", right.path, "--desc", right.desc, c.uri("aes"))
	requireExit(t, r, exitOK)
	requireSame(t, "cat with two keys", []byte(r.stdout), data)
}

func TestGetNotEncryptedOrMissing(t *testing.T) {
	c := newS3CLI(t)
	k := c.aesKey("a.key")
	if _, err := c.admin.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(c.bucket), Key: aws.String("plain.txt"), Body: strings.NewReader("not a secret"),
	}); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"get", "--key", k.path, c.uri("plain.txt"), "out"},
		{"cat", "--key", k.path, c.uri("plain.txt")},
		{"inspect", c.uri("plain.txt")},
		{"head", "--verify", "--key", k.path, c.uri("plain.txt")},
	} {
		r := c.run(nil, args...)
		requireExit(t, r, exitFailed, "s3envelope "+args[0]+": "+c.uri("plain.txt")+" is not encrypted by an S3 encryption client")
		requireOneLineError(t, r)
		if r.stdout != "" {
			t.Fatalf("%s printed %q for an object that is not encrypted", args[0], r.stdout)
		}
	}
	c.requireNoDownloads("out")
	for _, args := range [][]string{
		{"get", "--key", k.path, c.uri("missing"), "out"},
		{"cat", "--key", k.path, c.uri("missing")},
		{"inspect", c.uri("missing")},
	} {
		r := c.run(nil, args...)
		requireExit(t, r, exitFailed, c.uri("missing")+": no such object")
		requireOneLineError(t, r)
	}
	c.requireNoDownloads("out")
	for _, args := range [][]string{
		{"get", "--key", k.path, "bucket/key", "out"},
		{"cat", "--key", k.path, "s3://" + c.bucket},
		{"get", "--key", k.path, c.uri("x")},
		{"cat", "--key", k.path, c.uri("x"), "extra"},
		{"get", "--key", k.path, "--range", "bytes=1-2,5-6", c.uri("x"), "out"},
		{"cat", "--key", k.path, "--range", "0-10", c.uri("x")},
		{"cat", c.uri("x")},
	} {
		r := c.run(nil, args...)
		requireExit(t, r, exitUsage, "s3envelope "+args[0]+": ", "usage: s3envelope "+args[0])
	}
}

// TestGetRange: --range reads part of a segmented object, authenticated;
// of a V2 or V3 object it is refused with a message that says why.
func TestGetRange(t *testing.T) {
	c := newS3CLI(t)
	k := c.aesKey("a.key")
	data := randomBytes(t, 300<<10+11)
	c.put(k, "seg", data, "--format", "segmented")
	n := len(data)
	for _, tc := range []struct {
		rng        string
		start, end int // the plaintext slice wanted
	}{
		{"bytes=100-199", 100, 200},
		{"bytes=65000-140000", 65000, 140001},
		{"bytes=-1000", n - 1000, n},
		{"bytes=300000-", 300000, n},
		{"bytes=0-0", 0, 1},
	} {
		r := c.run(nil, "cat", "--quiet", "--key", k.path, "--range", tc.rng, c.uri("seg"))
		requireExit(t, r, exitOK)
		requireSame(t, "cat --range "+tc.rng, []byte(r.stdout), data[tc.start:tc.end])
	}
	out := "range.bin"
	r := c.run(nil, "get", "--json", "--key", k.path, "--range", "bytes=65000-140000", c.uri("seg"), out)
	requireExit(t, r, exitOK)
	requireSame(t, "get --range", readFile(t, filepath.Join(c.dir, out)), data[65000:140001])
	if res := decodeJSON[getResult](t, r); res.Size != 75001 || res.Range != "bytes=65000-140000" || res.Format != "segmented" {
		t.Fatalf("get --range summary: %+v", res)
	}

	r = c.run(nil, "cat", "--key", k.path, "--range", fmt.Sprintf("bytes=%d-", n+10), c.uri("seg"))
	requireExit(t, r, exitFailed, "requested range not satisfiable")
	requireOneLineError(t, r)

	for _, f := range []string{"v3", "v2"} {
		c.put(k, f, data, "--format", f)
		r := c.run(nil, "cat", "--key", k.path, "--range", "bytes=0-99", c.uri(f))
		requireExit(t, r, exitFailed, fmt.Sprintf("s3envelope cat: %s is a %s object: a byte range of it cannot be authenticated without reading all of it, so --range is for segmented objects only", c.uri(f), strings.ToUpper(f)))
		requireOneLineError(t, r)
		if r.stdout != "" {
			t.Fatalf("a refused range released %d bytes", len(r.stdout))
		}
		r = c.run(nil, "get", "--key", k.path, "--range", "bytes=0-99", c.uri(f), f+".part")
		requireExit(t, r, exitFailed, "--range is for segmented objects only")
		c.requireNoDownloads(f + ".part")
	}

	// --require-v3 refuses V2, which is read by default.
	r = c.run(nil, "cat", "--require-v3", "--key", k.path, c.uri("v2"))
	requireExit(t, r, exitFailed, "commitment policy")
	requireOneLineError(t, r)
}

// TestGetOutputFile: get never replaces a file without --force, and a
// directory gets the object's base name.
func TestGetOutputFile(t *testing.T) {
	c := newS3CLI(t)
	k := c.aesKey("a.key")
	data := randomBytes(t, 5000)
	c.put(k, "dir/report.pdf", data)

	c.file("exists.pdf", []byte("mine"))
	r := c.run(nil, "get", "--key", k.path, c.uri("dir/report.pdf"), "exists.pdf")
	requireExit(t, r, exitUsage, "s3envelope get: exists.pdf exists: give --force to replace it")
	requireOneLineError(t, r)
	if got := readFile(t, filepath.Join(c.dir, "exists.pdf")); string(got) != "mine" {
		t.Fatal("get replaced a file without --force")
	}
	r = c.run(nil, "get", "--force", "--key", k.path, c.uri("dir/report.pdf"), "exists.pdf")
	requireExit(t, r, exitOK)
	requireSame(t, "get --force", readFile(t, filepath.Join(c.dir, "exists.pdf")), data)

	if err := os.Mkdir(filepath.Join(c.dir, "downloads"), 0o700); err != nil {
		t.Fatal(err)
	}
	r = c.run(nil, "get", "--key", k.path, c.uri("dir/report.pdf"), "downloads")
	requireExit(t, r, exitOK)
	requireSame(t, "get to a directory", readFile(t, filepath.Join(c.dir, "downloads", "report.pdf")), data)
	// And again: now the file in the directory exists.
	requireExit(t, c.run(nil, "get", "--key", k.path, c.uri("dir/report.pdf"), "downloads"), exitUsage, "report.pdf exists")

	r = c.run(nil, "get", "--key", k.path, c.uri("dir/report.pdf"), filepath.Join("no", "such", "dir", "x"))
	requireExit(t, r, exitUsage, "cannot write beside")
	requireOneLineError(t, r)
}

// TestGetProgress: the plain lines count the stored bytes received up to
// the object's stored size; the terminal shows a bar.
func TestGetProgress(t *testing.T) {
	c := newS3CLI(t)
	k := c.aesKey("a.key")
	data := randomBytes(t, 24<<20)
	c.put(k, "big", data)
	c.env = append(c.env, "S3ENVELOPE_PROGRESS_INTERVAL=50ms")

	r := c.run(nil, "get", "--key", k.path, c.uri("big"), "big")
	requireExit(t, r, exitOK)
	stored := len(data) + 16 // V3: the tag
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	for _, l := range lines {
		if !strings.HasPrefix(l, "progress op=get target="+c.uri("big")+" done=") || !strings.Contains(l, fmt.Sprintf(" total=%d ", stored)) {
			t.Fatalf("not a plain progress line: %q", l)
		}
	}
	if !strings.Contains(lines[len(lines)-1], fmt.Sprintf(" done=%d total=%d ", stored, stored)) {
		t.Fatalf("last progress line %q", lines[len(lines)-1])
	}

	r = c.runOnTerminal(nil, "cat", "--key", k.path, c.uri("big"))
	requireExit(t, r, exitOK)
	requireSame(t, "cat on a terminal", []byte(r.stdout), data)
	for _, want := range []string{"\rcat [", "%", "/s", "ETA ", "100% 24.0 MiB/24.0 MiB"} {
		if !strings.Contains(r.stderr, want) {
			t.Fatalf("the terminal shows no %q:\n%q", want, r.stderr)
		}
	}
	r.stdout = ""
	requireNoSecrets(t, k.secrets, r)
}

// TestGetEmptyDescription: an object whose master key has no description
// (AWS's clients store {} for a key given none) reads with --desc '{}', or
// with no --desc at all.
func TestGetEmptyDescription(t *testing.T) {
	c := newS3CLI(t)
	raw := randomBytes(t, 32)
	c.file("nodesc.key", []byte(hex.EncodeToString(raw)))
	kr, err := keyring.NewAES(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := s3crypto.New(c.admin, materials.NewProvider(kr))
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(t, 4000)
	if _, err := cl.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(c.bucket), Key: aws.String("nodesc"), Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"cat", "--key", "nodesc.key", c.uri("nodesc")},
		{"cat", "--key", "nodesc.key", "--desc", "{}", c.uri("nodesc")},
	} {
		r := c.run(nil, args...)
		requireExit(t, r, exitOK)
		requireSame(t, "cat of an object with an empty description", []byte(r.stdout), data)
	}
	// Writing still needs a description: readers find the key by it.
	requireExit(t, c.run([]byte("x"), "put", "--key", "nodesc.key", "--desc", "{}", "-", c.uri("x")), exitUsage, "needs a --desc")
}

// TestGetInterrupted: Ctrl-C during a download to a file leaves no file,
// not even the temporary one, and exits 1 saying so.
func TestGetInterrupted(t *testing.T) {
	c := newS3CLI(t)
	k := c.aesKey("a.key")
	c.put(k, "big", randomBytes(t, 96<<20), "--format", "segmented")
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := c.command(ctx, []string{"get", "--quiet", "--key", k.path, c.uri("big"), "big.out"})
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Interrupt once plaintext is being written to the temporary file.
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
	wait:
		for {
			select {
			case <-exited:
				break wait
			case <-time.After(5 * time.Millisecond):
			}
			matches, _ := filepath.Glob(filepath.Join(c.dir, ".big.out.*.s3envelope-partial"))
			if len(matches) == 1 {
				if fi, err := os.Stat(matches[0]); err == nil && fi.Size() > 0 {
					cmd.Process.Signal(os.Interrupt)
					<-exited
					break
				}
			}
		}
		cancel()
		r := result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
		t.Logf("exit %d, stderr: %s", r.code, r.stderr)
		if r.code == exitOK && attempt < 3 {
			t.Logf("attempt %d: the download finished before the interrupt; again", attempt)
			os.Remove(filepath.Join(c.dir, "big.out"))
			continue
		}
		requireExit(t, r, exitFailed, "s3envelope get: interrupted: ")
		requireOneLineError(t, r)
		c.requireNoDownloads("big.out")
		return
	}
}

// TestHelpListsCommandFlags: 'help CMD' lists the command's own flags, as
// 'CMD -h' does, with the examples.
func TestHelpListsCommandFlags(t *testing.T) {
	c := newCLI(t)
	for cmd, flags := range map[string][]string{
		"keygen":  {"-type", "-bits", "-out"},
		"put":     {"-key", "-desc", "-format", "-instruction-file", "-content-type", "-metadata"},
		"get":     {"-key", "-desc", "-range", "-force", "-require-v3"},
		"cat":     {"-key", "-range"},
		"inspect": {"-verify", "-key"},
		"head":    {"-verify", "-key"},
	} {
		for _, args := range [][]string{{"help", cmd}, {cmd, "-h"}} {
			r := c.run(nil, args...)
			requireExit(t, r, exitOK)
			out := r.stdout + r.stderr
			for _, f := range append(flags, "Examples:", "-endpoint-url") {
				if !strings.Contains(out, "  "+f) && !strings.Contains(out, f+"\n") {
					t.Errorf("%v does not show %s", args, f)
				}
			}
		}
	}
}
