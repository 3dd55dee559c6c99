package batchops

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/s3mem"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
	"github.com/s3envelope/s3envelope/s3crypto"
)

func aesKey(t *testing.T, kid string) (*keyring.AES, []byte) {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b)
	k, err := keyring.NewAES(b, map[string]string{"kid": kid})
	if err != nil {
		t.Fatal(err)
	}
	return k, b
}

func put(t *testing.T, c *s3crypto.Client, bucket, key, body string) {
	t.Helper()
	if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader(body)}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// fixture is an in-process S3 bucket with objects under the old master key
// (2025), the new one (2026), a retired one (2024), none, and a broken
// envelope, and a Handler rotating 2025 to 2026.
type fixture struct {
	srv                 *s3mem.Server
	api                 *s3.Client
	bucket              string
	old, current, gone  *keyring.AES
	h                   *Handler
	oldClient, newAlone *s3crypto.Client
}

func newFixture(t *testing.T, optFns ...func(*Options)) *fixture {
	t.Helper()
	f := &fixture{srv: s3mem.New(), bucket: "rotate"}
	f.srv.CreateBucket(f.bucket)
	f.api = f.srv.Client()
	f.old, _ = aesKey(t, "2025")
	f.current, _ = aesKey(t, "2026")
	f.gone, _ = aesKey(t, "2024")
	var err error
	f.oldClient, err = s3crypto.New(f.api, materials.NewProvider(f.old))
	if err != nil {
		t.Fatal(err)
	}
	f.newAlone, err = s3crypto.New(f.api, materials.NewProvider(f.current))
	if err != nil {
		t.Fatal(err)
	}
	rotating, err := s3crypto.New(f.api, materials.NewProvider(f.current, f.old))
	if err != nil {
		t.Fatal(err)
	}
	f.h, err = New(rotating, f.api, optFns...)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) invoke(t *testing.T, ctx context.Context, h *Handler, event any) *events.S3BatchJobResponse {
	t.Helper()
	raw, err := json.Marshal(event)
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.Handle(ctx, raw)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	// What Lambda would send back, read as Batch Operations reads it.
	out, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back events.S3BatchJobResponse
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	return &back
}

// enc URL-encodes a key as Batch Operations does (a form encoding).
func enc(key string) string { return strings.ReplaceAll(url.QueryEscape(key), "%2F", "/") }

func v2(bucket string, args map[string]string, keys ...string) events.S3BatchJobEventV2 {
	ev := events.S3BatchJobEventV2{InvocationSchemaVersion: "2.0", InvocationID: "inv-2", Job: events.S3BatchJobV2{ID: "job", UserArguments: args}}
	for i, k := range keys {
		ev.Tasks = append(ev.Tasks, events.S3BatchJobTaskV2{TaskID: fmt.Sprint("t", i), S3Key: enc(k), S3Bucket: bucket})
	}
	return ev
}

func v1(bucket string, keys ...string) events.S3BatchJobEvent {
	ev := events.S3BatchJobEvent{InvocationSchemaVersion: "1.0", InvocationID: "inv-1", Job: events.S3BatchJob{ID: "job"}}
	for i, k := range keys {
		ev.Tasks = append(ev.Tasks, events.S3BatchJobTask{TaskID: fmt.Sprint("t", i), S3Key: enc(k), S3BucketARN: "arn:aws:s3:::" + bucket})
	}
	return ev
}

func want(t *testing.T, res *events.S3BatchJobResponse, i int, code, contains string) {
	t.Helper()
	r := res.Results[i]
	if r.TaskID != fmt.Sprint("t", i) || r.ResultCode != code || !strings.Contains(r.ResultString, contains) {
		t.Errorf("task %d: %s %q %q; want %s with %q", i, r.TaskID, r.ResultCode, r.ResultString, code, contains)
	}
}

// TestResultCodes: every kind of object gets its result code, in schema
// 1.0 and 2.0, with keys URL-encoded; the rewrapped objects then open with
// the new master key alone, and a delivery again finds them current.
func TestResultCodes(t *testing.T) {
	for _, schema := range []string{"1.0", "2.0"} {
		t.Run(schema, func(t *testing.T) {
			f := newFixture(t)
			keys := []string{"dir one/ü ñ+plus&.txt", "current", "plain", "retired", "malformed", "missing", "rotated?x=1%"}
			put(t, f.oldClient, f.bucket, keys[0], "old")
			put(t, f.newAlone, f.bucket, keys[1], "new")
			if _, err := f.api.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &f.bucket, Key: aws.String("plain"), Body: strings.NewReader("p")}); err != nil {
				t.Fatal(err)
			}
			goneClient, _ := s3crypto.New(f.api, materials.NewProvider(f.gone))
			put(t, goneClient, f.bucket, "retired", "r")
			if _, err := f.api.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &f.bucket, Key: aws.String("malformed"), Body: strings.NewReader("m"),
				Metadata: map[string]string{"x-amz-key-v2": "!!", "x-amz-iv": "AAAA", "x-amz-cek-alg": "AES/GCM/NoPadding", "x-amz-wrap-alg": "AES/GCM", "x-amz-matdesc": "{}"}}); err != nil {
				t.Fatal(err)
			}
			put(t, f.oldClient, f.bucket, keys[6], "old 2")
			var res *events.S3BatchJobResponse
			if schema == "1.0" {
				res = f.invoke(t, context.Background(), f.h, v1(f.bucket, keys...))
			} else {
				res = f.invoke(t, context.Background(), f.h, v2(f.bucket, nil, keys...))
			}
			if res.InvocationSchemaVersion != schema || res.TreatMissingKeysAs != "PermanentFailure" || res.InvocationID != "inv-"+schema[:1] || len(res.Results) != len(keys) {
				t.Fatalf("response %+v", res)
			}
			want(t, res, 0, "Succeeded", "rewrapped")
			want(t, res, 1, "Succeeded", "already current")
			want(t, res, 2, "PermanentFailure", "not encrypted")
			want(t, res, 3, "PermanentFailure", "no master key")
			want(t, res, 4, "PermanentFailure", "malformed")
			want(t, res, 5, "PermanentFailure", "no such object")
			want(t, res, 6, "Succeeded", "rewrapped")
			for i, body := range map[int]string{0: "old", 1: "new", 6: "old 2"} {
				out, err := f.newAlone.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &f.bucket, Key: &keys[i]})
				if err != nil {
					t.Fatalf("%s with the new key alone: %v", keys[i], err)
				}
				got, _ := io.ReadAll(out.Body)
				out.Body.Close()
				if string(got) != body {
					t.Errorf("%s: %q, want %q", keys[i], got, body)
				}
			}
			again := f.invoke(t, context.Background(), f.h, v2(f.bucket, nil, keys[0]))
			want(t, again, 0, "Succeeded", "already current")
		})
	}
}

// TestUserArguments: dryRun writes nothing; an unknown argument or value
// fails every task and does nothing.
func TestUserArguments(t *testing.T) {
	f := newFixture(t)
	put(t, f.oldClient, f.bucket, "k", "old")
	res := f.invoke(t, context.Background(), f.h, v2(f.bucket, map[string]string{"dryRun": "true", "enforceRotation": "true"}, "k"))
	want(t, res, 0, "Succeeded", "dry run: would rewrap")
	for _, args := range []map[string]string{{"dryrun": "true"}, {"dryRun": "yes please"}, {"reEncrypt": "sometimes"}} {
		res = f.invoke(t, context.Background(), f.h, v2(f.bucket, args, "k"))
		want(t, res, 0, "PermanentFailure", "nothing was done")
	}
	if _, err := f.oldClient.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &f.bucket, Key: aws.String("k")}); err != nil {
		t.Errorf("the object was rewrapped by a dry run or a refused job: the old key no longer opens it: %v", err)
	}
}

// TestEnforceRotation: a new master key that the old one can unwrap (the
// same AES bytes under another description) is refused.
func TestEnforceRotation(t *testing.T) {
	f := newFixture(t)
	b := make([]byte, 32)
	rand.Read(b)
	old, _ := keyring.NewAES(b, map[string]string{"kid": "a"})
	same, _ := keyring.NewAES(b, map[string]string{"kid": "b"})
	oc, _ := s3crypto.New(f.api, materials.NewProvider(old))
	put(t, oc, f.bucket, "k", "x")
	rc, _ := s3crypto.New(f.api, materials.NewProvider(same, old))
	h, _ := New(rc, f.api, func(o *Options) { o.EnforceRotation = true })
	res := f.invoke(t, context.Background(), h, v2(f.bucket, nil, "k"))
	want(t, res, 0, "PermanentFailure", "old master key can still unwrap")
}

// throttled answers every request 503 SlowDown, as S3 does to a caller
// going too fast.
type throttled struct{ n atomic.Int32 }

func (d *throttled) Do(r *http.Request) (*http.Response, error) {
	d.n.Add(1)
	body := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`
	return &http.Response{StatusCode: 503, Status: "503 Slow Down", Header: http.Header{"Content-Type": {"application/xml"}},
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
}

// TestTemporaryFailures: throttling, and the Lambda deadline (a task not
// started, and a task cut off), are answered TemporaryFailure.
func TestTemporaryFailures(t *testing.T) {
	f := newFixture(t)
	put(t, f.oldClient, f.bucket, "k", "old")
	slow := &throttled{}
	api := f.srv.Client(func(o *s3.Options) { o.HTTPClient = slow; o.RetryMaxAttempts = 1 })
	c, _ := s3crypto.New(api, materials.NewProvider(f.current, f.old))
	h, _ := New(c, api)
	res := f.invoke(t, context.Background(), h, v2(f.bucket, nil, "k"))
	want(t, res, 0, "TemporaryFailure", "SlowDown")
	if slow.n.Load() == 0 {
		t.Error("no request reached the throttling server")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res = f.invoke(t, ctx, f.h, v2(f.bucket, nil, "k", "k"))
	want(t, res, 0, "TemporaryFailure", "deadline is near")
	want(t, res, 1, "TemporaryFailure", "deadline is near")

	// A reserve that leaves the task 100 ms, against a server that takes
	// longer: the rewrap is cut off, and retried later.
	stall := f.srv.Client(func(o *s3.Options) {
		o.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) { <-ctx.Done(); return nil, ctx.Err() }
		})
		o.BaseEndpoint = aws.String("http://192.0.2.1:9")
	})
	c, _ = s3crypto.New(stall, materials.NewProvider(f.current, f.old))
	h, _ = New(c, stall, func(o *Options) { o.Reserve = 2 * time.Second })
	ctx, cancel = context.WithTimeout(context.Background(), 4100*time.Millisecond)
	defer cancel()
	res = f.invoke(t, ctx, h, v2(f.bucket, nil, "k"))
	want(t, res, 0, "TemporaryFailure", "")
	if _, err := f.oldClient.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &f.bucket, Key: aws.String("k")}); err != nil {
		t.Errorf("a failed task changed the object: %v", err)
	}
}

// TestClassify: each error a rewrap can return gets the code Batch
// Operations must act on.
func TestClassify(t *testing.T) {
	status := func(code int) error {
		return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: code}}, Err: errors.New("x")}}
	}
	for _, c := range []struct {
		err  error
		code string
	}{
		{&smithy.GenericAPIError{Code: "ThrottlingException"}, temporaryFailure},
		{fmt.Errorf("keyring: KMS Decrypt: %w", &smithy.GenericAPIError{Code: "KMSInternalException"}), temporaryFailure},
		{&smithy.GenericAPIError{Code: "SlowDown"}, temporaryFailure},
		{status(500), temporaryFailure},
		{status(503), temporaryFailure},
		{status(429), temporaryFailure},
		{fmt.Errorf("a: %w", context.DeadlineExceeded), temporaryFailure},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, temporaryFailure},
		{fmt.Errorf("x: %w", s3crypto.ErrOutcomeUnknown), temporaryFailure},
		{fmt.Errorf("x: %w: %w", s3crypto.ErrConcurrentModification, status(412)), permanentFailure},
		{status(403), permanentFailure},
		{&smithy.GenericAPIError{Code: "AccessDeniedException"}, permanentFailure},
		{fmt.Errorf("x: %w", envelope.ErrNoMasterKey), permanentFailure},
		{fmt.Errorf("x: %w", envelope.ErrMalformed), permanentFailure},
		{fmt.Errorf("x: %w", envelope.ErrPolicy), permanentFailure},
		{fmt.Errorf("x: %w", envelope.ErrAuthentication), permanentFailure},
		{errors.New("anything else"), permanentFailure},
	} {
		if code, msg := classify(c.err); code != c.code || msg == "" {
			t.Errorf("%v: %s %q, want %s", c.err, code, msg, c.code)
		}
	}
}

// TestNotAnInvocation: an event that is not Batch Operations' is the
// function's error, not a made-up response.
func TestNotAnInvocation(t *testing.T) {
	f := newFixture(t)
	for _, ev := range []string{`[]`, `{"invocationSchemaVersion":"3.0","tasks":[]}`} {
		if res, err := f.h.Handle(context.Background(), json.RawMessage(ev)); err == nil {
			t.Errorf("%s: %+v, no error", ev, res)
		}
	}
	res := f.invoke(t, context.Background(), f.h, map[string]any{"invocationSchemaVersion": "2.0", "invocationId": "i",
		"tasks": []map[string]string{{"taskId": "t0", "s3Key": "%zz", "s3Bucket": "b"}, {"taskId": "t1", "s3Key": "k"}}})
	want(t, res, 0, "PermanentFailure", "malformed task")
	want(t, res, 1, "PermanentFailure", "names no bucket")
}

type fakeSM struct{ secret []byte }

func (f fakeSM) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	if aws.ToString(in.SecretId) != "rotation/2026" {
		return nil, &smithy.GenericAPIError{Code: "ResourceNotFoundException"}
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(hex.EncodeToString(f.secret))}, nil
}

type fakeSSM struct{ value []byte }

func (f fakeSSM) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	if !aws.ToBool(in.WithDecryption) {
		return nil, errors.New("a SecureString must be asked for decrypted")
	}
	return &ssm.GetParameterOutput{Parameter: &ssmtypes.Parameter{Value: aws.String(string(f.value))}}, nil
}

// TestSources: master keys from Secrets Manager, SSM and files open what
// the same key bytes wrote; a bad key's error holds no key bytes.
func TestSources(t *testing.T) {
	srv := s3mem.New()
	srv.CreateBucket("b")
	api := srv.Client()
	_, smKey := aesKey(t, "x")
	_, ssmKey := aesKey(t, "x")
	_, fileKey := aesKey(t, "x")
	path := filepath.Join(t.TempDir(), "k")
	if err := os.WriteFile(path, []byte(hex.EncodeToString(fileKey)), 0o600); err != nil {
		t.Fatal(err)
	}
	src := Sources{SecretsManager: fakeSM{smKey}, SSM: fakeSSM{[]byte(hex.EncodeToString(ssmKey))}}
	p, err := src.Provider(context.Background(), "aes:secretsmanager:rotation/2026?kid=2026", "aes:ssm:/rotation/2025?kid=2025", " aes:file:"+path+"?kid=2024&app=x")
	if err != nil {
		t.Fatal(err)
	}
	for kid, b := range map[string][]byte{"2026": smKey, "2025": ssmKey, "2024": fileKey} {
		desc := map[string]string{"kid": kid}
		if kid == "2024" {
			desc["app"] = "x"
		}
		k, _ := keyring.NewAES(b, desc)
		w, _ := s3crypto.New(api, materials.NewProvider(k))
		put(t, w, "b", kid, kid)
		r, _ := s3crypto.New(api, p)
		out, err := r.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String(kid)})
		if err != nil {
			t.Fatalf("key %s from its source does not open what its bytes wrote: %v", kid, err)
		}
		out.Body.Close()
	}
	if got := p.Current().Description()["kid"]; got != "2026" {
		t.Errorf("current key %q, want the new key 2026", got)
	}
	short := []byte("0123456789abcdef0123") // 20 hex digits: not a key
	for _, spec := range []string{"aes:ssm:/x?kid=1", "aes:ssm:/x", "aes:nowhere:x?kid=1", "des:ssm:/x?kid=1", "kms:k", "aes:secretsmanager:other?kid=1"} {
		_, err := Sources{SSM: fakeSSM{short}, SecretsManager: fakeSM{smKey}}.Provider(context.Background(), spec)
		if err == nil {
			t.Errorf("%s: no error", spec)
			continue
		}
		if bytes.Contains([]byte(err.Error()), short) || strings.Contains(err.Error(), hex.EncodeToString(smKey)) {
			t.Errorf("%s: the error shows key bytes: %v", spec, err)
		}
	}
}
