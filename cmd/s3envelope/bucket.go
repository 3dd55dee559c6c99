package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// What rewrap and verify share: they walk a bucket or prefix, report each
// object that fails on a line of its own, keep a checkpoint file, and end
// with a summary.

// objectFailure is one object that failed, as the summaries list it.
type objectFailure struct {
	Key    string `json:"key"`
	Reason string `json:"reason"` // the class: see failureReason
	Error  string `json:"error"`
}

func newObjectFailure(key string, err error) objectFailure {
	return objectFailure{Key: key, Reason: failureReason(err), Error: objectErrorText(key, err)}
}

// failureReason classifies why an object did not open, or could not be
// rewrapped.
func failureReason(err error) string {
	switch {
	case errors.Is(err, envelope.ErrAuthentication), errors.Is(err, s3crypto.ErrCustomerKeyRefused):
		return "authentication failed"
	case errors.Is(err, envelope.ErrNoMasterKey):
		return "no master key for its description"
	case errors.Is(err, envelope.ErrNoEnvelope):
		return "not encrypted"
	case errors.Is(err, envelope.ErrPolicy), errors.Is(err, envelope.ErrDisallowed):
		return "policy (legacy)"
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	}
	return "other"
}

// objectErrorText is err on one line, without the "s3crypto: Op
// bucket/key:" prefix when err is about key: the line already names it.
func objectErrorText(key string, err error) string {
	var oe *s3crypto.ObjectError
	if errors.As(err, &oe) && oe.Key == key && oe.Err != nil {
		err = oe.Err
	}
	return oneLine(err)
}

// failureLine is how a failed object is reported on stderr, as it happens.
func failureLine(bucket string, f objectFailure) string {
	return fmt.Sprintf("FAILED s3://%s/%s (%s): %s", bucket, f.Key, f.Reason, f.Error)
}

// maxListedFailures bounds the failures a text summary lists: each was
// reported on stderr as it happened, and --json lists them all.
const maxListedFailures = 100

func printFailures(w io.Writer, failures []objectFailure) {
	for i, f := range failures {
		if i == maxListedFailures {
			fmt.Fprintf(w, "  ... and %d more failures (each was reported on stderr; --json lists them all)\n", len(failures)-maxListedFailures)
			return
		}
		fmt.Fprintf(w, "  FAILED %s (%s): %s\n", f.Key, f.Reason, f.Error)
	}
}

// summaryRow is one count of a text summary.
func summaryRow(w io.Writer, what string, n int) {
	fmt.Fprintf(w, "  %-22s %d\n", what, n)
}

// resumeHint says how to go on after a walk that did not finish, or left
// objects to retry.
func resumeHint(resume string) string {
	if resume == "" {
		return "run again to retry (add --resume FILE to keep a checkpoint and continue where a walk stopped)"
	}
	return "run again with --resume " + resume + " to continue and retry the failures"
}

// seconds is a duration for a JSON summary.
func seconds(d time.Duration) float64 { return d.Round(time.Millisecond).Seconds() }
