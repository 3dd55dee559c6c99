//lint:file-ignore SA1019 feature/s3/manager is deprecated, and it is the SDK's v1 transfer manager, the baseline here (see the package doc for why).

package xfer

import (
	"context"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// sdkManager stores the plaintext as it is, with the SDK's own Uploader and
// Downloader.
type sdkManager struct {
	up   *manager.Uploader
	down *manager.Downloader
	hold int64
}

func newSDKManager(s Servers, o Options) *sdkManager {
	return &sdkManager{
		up: manager.NewUploader(s.S3, func(u *manager.Uploader) {
			u.PartSize, u.Concurrency = o.PartSize, o.Concurrency
		}),
		down: manager.NewDownloader(s.S3, func(d *manager.Downloader) {
			d.PartSize, d.Concurrency = o.PartSize, o.Concurrency
		}),
		// While the parts stream side by side, the ones after the first
		// unfinished part are partly written: under Concurrency parts
		// held. Twice Concurrency parts means that part stalled.
		hold: 2 * int64(o.Concurrency) * o.PartSize,
	}
}

func (m *sdkManager) Upload(ctx context.Context, bucket, key string, body io.ReadSeeker) error {
	_, err := m.up.Upload(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: body})
	return err
}

func (m *sdkManager) Download(ctx context.Context, bucket, key string, w io.Writer) (int64, error) {
	o := newInOrder(w, m.hold)
	if _, err := m.down.Download(ctx, o, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		return 0, err
	}
	return o.done()
}
