package s3crypto

import (
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// ObjectError is the error of an operation on one object: every error that
// a method of Client, SSECClient, Uploader or Downloader returns for an
// object is one (errors.As), and errors.Is finds the cause it wraps — an
// envelope sentinel, one of this package's, or S3's own error.
type ObjectError struct {
	Op          string // the method: "PutObject", "Upload", "Rewrap", …
	Bucket, Key string
	// UploadId (spelt as the SDK spells it) names the multipart upload of
	// an Upload that created one; when aborting it failed too, its parts
	// remain under this ID.
	UploadId string
	Err      error
}

func (e *ObjectError) Error() string {
	s := "s3crypto: " + e.Op
	if e.Bucket != "" || e.Key != "" {
		// OpenObject knows no object's name: only its response.
		s += " " + objectName(&e.Bucket, &e.Key)
	}
	if e.UploadId != "" {
		s += " (multipart upload " + e.UploadId + ")"
	}
	return s + ": " + e.Err.Error()
}

func (e *ObjectError) Unwrap() error { return e.Err }

// errNilInput is the cause for a nil input struct.
var errNilInput = errors.New("nil input")

// wrapObjectError makes *err, if any, an *ObjectError of op on the object.
// An ObjectError of the same object from a call inside op (the Uploader's
// PutObject) is relabelled, not nested.
func wrapObjectError(err *error, op string, bucket, key *string) {
	if *err == nil {
		return
	}
	oe := &ObjectError{Op: op, Bucket: aws.ToString(bucket), Key: aws.ToString(key), Err: *err}
	if inner, ok := (*err).(*ObjectError); ok && inner.Bucket == oe.Bucket && inner.Key == oe.Key {
		oe.Err, oe.UploadId = inner.Err, inner.UploadId
	}
	*err = oe
}
