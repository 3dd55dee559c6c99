package batchops

import (
	"context"
	"errors"
	"io"
	"net"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/s3envelope/s3envelope/s3crypto"
)

// throttles are the error codes AWS services answer a caller going too
// fast with (S3's SlowDown, KMS's ThrottlingException, the generic ones),
// and those of a dependency briefly unavailable (KMS's internal and
// timeout errors, a key in a custom key store not reachable).
var throttles = map[string]bool{
	"SlowDown":                               true,
	"Throttling":                             true,
	"ThrottlingException":                    true,
	"ThrottledException":                     true,
	"RequestLimitExceeded":                   true,
	"RequestThrottled":                       true,
	"RequestThrottledException":              true,
	"TooManyRequestsException":               true,
	"ProvisionedThroughputExceededException": true,
	"KMSInternalException":                   true,
	"DependencyTimeoutException":             true,
	"KeyUnavailableException":                true,
	"InternalError":                          true,
	"ServiceUnavailable":                     true,
	"RequestTimeout":                         true,
	"RequestTimeoutException":                true,
}

// temporary reports whether a later attempt may succeed where err failed:
// the context's deadline (the Lambda's, less the reserve) or cancellation,
// throttling, an HTTP 5xx or 429, a network error, or a rewrap whose
// write's outcome is unknown (the next delivery finds it done or not).
func temporary(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, s3crypto.ErrOutcomeUnknown) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && throttles[ae.ErrorCode()] {
		return true
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && (re.HTTPStatusCode() >= 500 || re.HTTPStatusCode() == 429) {
		return true
	}
	var ne net.Error
	var ce *smithy.CanceledError
	return errors.As(err, &ne) || errors.As(err, &ce)
}
