// Package batchops is an S3 Batch Operations handler that rotates the
// master key of client-side encrypted objects: one s3crypto Rewrap per
// task of an "Invoke AWS Lambda function" job, each answered with the
// result code Batch Operations acts on (Succeeded, TemporaryFailure: it
// retries, PermanentFailure: it reports). Its command, cmd/bootstrap, is
// the Lambda function (the provided.al2023 runtime); docs/rotation-at-scale.md
// describes the job around it.
//
// It is a module of its own so that aws-lambda-go and the Secrets Manager
// and SSM clients never reach the library's users.
package batchops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3envelope/s3envelope/s3crypto"
)

// The result codes Batch Operations understands.
const (
	succeeded        = "Succeeded"
	temporaryFailure = "TemporaryFailure"
	permanentFailure = "PermanentFailure"
)

// maxResultString bounds a result string: it goes into the job's
// completion report, one line per task.
const maxResultString = 1024

// HeadObjectAPI is the plain (not decrypting) S3 call the handler makes
// itself: the HEAD of a task's version, for its ETag. *s3.Client has it.
type HeadObjectAPI interface {
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
}

// Options configure a Handler.
type Options struct {
	// DryRun and EnforceRotation are RewrapInput's, for every task of a job
	// whose user arguments (schema 2.0: "dryRun", "enforceRotation", each
	// "true" or "false") do not say otherwise.
	DryRun, EnforceRotation bool
	// ReEncrypt is RewrapInput.ReEncrypt (user argument "reEncrypt"): true
	// has a KMS → KMS rewrap made by KMS ReEncrypt, two KMS requests per
	// object rather than four, without the rewrap-time key commitment
	// check of V3 objects (every read still checks it).
	ReEncrypt *bool
	// Reserve is the time kept back from the Lambda deadline to answer:
	// a task's rewrap must end that long before it, and no task is started
	// with less than twice that left (those are answered TemporaryFailure,
	// for Batch Operations to deliver again). Zero means 3 seconds.
	Reserve time.Duration
}

// Handler answers Batch Operations invocations. It is safe for concurrent
// use, as the clients it is given are.
type Handler struct {
	client *s3crypto.Client
	head   HeadObjectAPI
	opts   Options
}

// New returns a Handler that rewraps with client (its provider's current
// master key is the new one, the others the old) and reads versions'
// ETags with head, a plain S3 client.
func New(client *s3crypto.Client, head HeadObjectAPI, optFns ...func(*Options)) (*Handler, error) {
	if client == nil || head == nil {
		return nil, errors.New("batchops: New needs an s3crypto client and an S3 client")
	}
	h := &Handler{client: client, head: head}
	for _, fn := range optFns {
		fn(&h.opts)
	}
	if h.opts.Reserve <= 0 {
		h.opts.Reserve = 3 * time.Second
	}
	return h, nil
}

// invocation is schema 1.0 and 2.0 of the event in one: 1.0 names the
// bucket by ARN (s3BucketArn), 2.0 by name (s3Bucket) and carries the
// job's user arguments.
type invocation struct {
	events.S3BatchJobEventV2
	Tasks []task `json:"tasks"`
}

type task struct {
	events.S3BatchJobTaskV2
	S3BucketARN string `json:"s3BucketArn"`
}

// Handle answers one invocation: a result per task, in order. The error is
// for an event that is not a Batch Operations invocation at all (Lambda
// reports it as the function's failure; Batch Operations retries it, then
// fails the tasks): an event it can read always gets a response.
func (h *Handler) Handle(ctx context.Context, event json.RawMessage) (*events.S3BatchJobResponse, error) {
	var inv invocation
	if err := json.Unmarshal(event, &inv); err != nil {
		return nil, fmt.Errorf("batchops: not a Batch Operations invocation: %w", err)
	}
	res := &events.S3BatchJobResponse{
		InvocationSchemaVersion: inv.InvocationSchemaVersion,
		TreatMissingKeysAs:      permanentFailure,
		InvocationID:            inv.InvocationID,
		Results:                 make([]events.S3BatchJobResult, 0, len(inv.Tasks)),
	}
	switch inv.InvocationSchemaVersion {
	case "1.0", "2.0":
	default:
		return nil, fmt.Errorf("batchops: invocation schema %q; this handler reads 1.0 and 2.0", inv.InvocationSchemaVersion)
	}
	opts, argErr := h.arguments(inv.Job.UserArguments)
	for _, t := range inv.Tasks {
		code, msg := permanentFailure, ""
		if argErr != nil {
			msg = argErr.Error()
		} else {
			code, msg = h.task(ctx, &t, opts)
		}
		res.Results = append(res.Results, events.S3BatchJobResult{TaskID: t.TaskID, ResultCode: code, ResultString: truncate(msg)})
	}
	return res, nil
}

// arguments reads the job's user arguments over the handler's defaults.
// An argument it does not know fails every task: a misspelt "dryRun" must
// not rewrap a bucket.
func (h *Handler) arguments(args map[string]string) (Options, error) {
	opts := h.opts
	for k, v := range args {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return opts, fmt.Errorf("user argument %s=%q is not true or false; nothing was done", k, v)
		}
		switch k {
		case "dryRun":
			opts.DryRun = b
		case "enforceRotation":
			opts.EnforceRotation = b
		case "reEncrypt":
			opts.ReEncrypt = &b
		default:
			return opts, fmt.Errorf("unknown user argument %q (known: dryRun, enforceRotation, reEncrypt); nothing was done", k)
		}
	}
	return opts, nil
}

// task runs one task and says what Batch Operations is to make of it.
func (h *Handler) task(ctx context.Context, t *task, opts Options) (code, msg string) {
	bucket, key, err := t.object()
	if err != nil {
		return permanentFailure, err.Error()
	}
	if dl, ok := ctx.Deadline(); ok {
		if time.Until(dl) < 2*opts.Reserve {
			return temporaryFailure, "not started: the Lambda deadline is near"
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-opts.Reserve))
		defer cancel()
	}
	in := &s3crypto.RewrapInput{Bucket: &bucket, Key: &key, DryRun: opts.DryRun, EnforceRotation: opts.EnforceRotation, ReEncrypt: opts.ReEncrypt}
	if v := t.S3VersionID; v != "" {
		// The manifest names a version: rewrap the object only while it
		// is that version (or our own rewrap of it, which keeps its body
		// and so, for a single-part copy, its ETag — a delivery again
		// then finds it AlreadyCurrent).
		head, err := h.head.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key, VersionId: &v})
		if err != nil {
			return classify(fmt.Errorf("reading version %s: %w", v, err))
		}
		in.ETag = head.ETag
	}
	out, err := h.client.Rewrap(ctx, in)
	if err != nil {
		return classify(err)
	}
	switch out.Status {
	case s3crypto.Rewrapped:
		if !out.Written {
			return succeeded, fmt.Sprintf("dry run: would rewrap %s to %s", out.OldWrap, out.NewWrap)
		}
		return succeeded, fmt.Sprintf("rewrapped %s to %s", out.OldWrap, out.NewWrap)
	case s3crypto.AlreadyCurrent:
		return succeeded, "already current: wrapped by the current master key; nothing written"
	case s3crypto.EnvelopeObject:
		return succeeded, "an instruction file or companion: rewrapped with its object"
	case s3crypto.NotEncrypted:
		return permanentFailure, "not encrypted: the object has no client-side envelope"
	}
	return permanentFailure, fmt.Sprintf("unexpected rewrap status %v", out.Status)
}

// object is the task's bucket and key: schema 2.0 names the bucket,
// 1.0 gives its ARN. Keys arrive URL-encoded as in a form (a space is
// "+", a "+" is "%2B").
func (t *task) object() (bucket, key string, err error) {
	bucket = t.S3Bucket
	if bucket == "" {
		arn := t.S3BucketARN
		i := strings.LastIndex(arn, ":")
		if !strings.HasPrefix(arn, "arn:") || i < 0 {
			return "", "", fmt.Errorf("the task names no bucket (s3Bucket %q, s3BucketArn %q)", t.S3Bucket, arn)
		}
		bucket = arn[i+1:]
	}
	key, err = url.QueryUnescape(t.S3Key)
	if err != nil || key == "" || bucket == "" {
		return "", "", fmt.Errorf("malformed task: bucket %q, key %q is not URL-encoded", bucket, t.S3Key)
	}
	return bucket, key, nil
}

// classify maps a failed task to a result code: TemporaryFailure for what
// a later delivery may get past (throttling, 5xx, timeouts, the network,
// a write whose outcome is unknown), PermanentFailure for the rest, with
// the reason.
func classify(err error) (code, msg string) {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	switch {
	case errors.Is(err, s3crypto.ErrConcurrentModification):
		// The object the manifest named was replaced (or is being): the
		// newer object is not this task's to judge. It is under whatever
		// key its writer used, and a later inventory lists it.
		return permanentFailure, "replaced since the manifest was made (its version or ETag no longer current); not rewrapped: " + err.Error()
	case temporary(err):
		return temporaryFailure, err.Error()
	case errors.As(err, &nsk) || errors.As(err, &nf):
		return permanentFailure, "no such object or version: " + err.Error()
	}
	return permanentFailure, err.Error()
}

func truncate(s string) string {
	if len(s) <= maxResultString {
		return s
	}
	s = s[:maxResultString]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
