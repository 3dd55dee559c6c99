package s3crypto_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// TestRewrapNoBodyBytes rewraps a 1 GiB object (envelope in metadata) and
// counts every byte the rewrapping client's *s3.Client moves, both ways, in
// its HTTP transport: the body never passes through the client.
func TestRewrapNoBodyBytes(t *testing.T) {
	raw, bucket := realS3(t)
	ctx := context.Background()
	const size = 1 << 30
	old, cur := newAES(t, "2025"), newRSA(t, 1, "2026")
	start := time.Now()
	block := random(1 << 20)
	put(t, newClient(t, raw, old), bucket, "big", &pattern{block: block, size: size})
	t.Logf("1 GiB uploaded through the library in %v", time.Since(start).Round(time.Millisecond))

	m := newMeter()
	c := clientFor(t, s3At(t, "", withTransport(m)), cur, []keyring.Keyring{old})
	start = time.Now()
	out, err := c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: aws.String("big")})
	took := time.Since(start)
	require.NoError(t, err)
	require.Equal(t, s3crypto.Rewrapped, out.Status)
	require.False(t, out.Multipart)
	moved := m.up.Load() + m.down.Load()
	t.Logf("rewrapping a %d-byte object moved %d bytes up + %d down = %d bytes in %d requests, in %v",
		int64(size)+format.TagSize, m.up.Load(), m.down.Load(), moved, len(m.requests()), took.Round(time.Millisecond))
	require.Less(t, moved, int64(64<<10))

	// The new key alone reads the whole object back.
	want, _, err := digest(&pattern{block: block, size: size})
	require.NoError(t, err)
	o, err := reader(t, raw, cur).GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("big")})
	require.NoError(t, err)
	defer o.Body.Close()
	got, n, err := digest(o.Body)
	require.NoError(t, err)
	require.Equal(t, int64(size), n)
	require.Equal(t, want, got)
	_, err = reader(t, raw, old).HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("big")})
	require.NoError(t, err)
	_, err = reader(t, raw, old).GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("big")})
	require.ErrorIs(t, err, envelope.ErrNoMasterKey)
}

// TestRewrapMultipartCopy lowers the multipart-copy threshold (5 GiB in
// production) so that a 12 MiB object is rewrapped by CreateMultipartUpload
// + UploadPartCopy (5 MiB ranges, each guarded by CopySourceIfMatch) +
// CompleteMultipartUpload (If-Match): attributes and tags are kept, the body
// is intact, and no upload is left behind.
func TestRewrapMultipartCopy(t *testing.T) {
	defer s3crypto.SetMultipartCopyForTest(8<<20, 5<<20)()
	raw, bucket := realS3(t)
	ctx := context.Background()
	old, cur := newRSA(t, 1, "old"), newAES(t, "new")
	for _, v := range []variant{{envelope.FormatV3, false}, {envelope.FormatV2, false}} {
		t.Run(v.String(), func(t *testing.T) {
			key := "mp/" + v.String()
			pt := random(12<<20 + 3)
			putWithAttributes(t, newClient(t, raw, old, v.apply), bucket, key, pt)
			before := snap(t, raw, bucket, key)
			m := newMeter()
			c := clientFor(t, s3At(t, "", withTransport(m)), cur, []keyring.Keyring{old})
			out, err := c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: &key})
			require.NoError(t, err)
			require.True(t, out.Multipart)
			require.True(t, out.Written)
			var parts int
			for _, r := range m.requests() {
				if strings.Contains(r, "partNumber=") {
					parts++
				}
			}
			require.Equal(t, 3, parts, "UploadPartCopy calls")
			require.Less(t, m.up.Load()+m.down.Load(), int64(64<<10))

			after := snap(t, raw, bucket, key)
			// A multipart copy has a multipart ETag and the server's default
			// checksum for parts; everything else is kept.
			requireSameAttributes(t, before.head, after.head, "LastModified", "ETag",
				"ChecksumSHA256", "ChecksumCRC64NVME", "ChecksumCRC32", "ChecksumCRC32C", "ChecksumType", "PartsCount")
			require.Equal(t, tagMap(before.tags), tagMap(after.tags))
			requireOnlyWrapChanged(t, v.format, envelopeMetadata(before.head.Metadata), envelopeMetadata(after.head.Metadata))
			readsAs(t, reader(t, raw, cur), bucket, key, pt)
			requireNoUploads(t, raw, bucket)
		})
	}
}

func requireNoUploads(t testing.TB, api *s3.Client, bucket string) {
	t.Helper()
	ups, err := api.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: &bucket})
	require.NoError(t, err)
	require.Empty(t, ups.Uploads, "multipart uploads left behind")
}

// TestRewrapToWrapOnlyKey rewraps to an RSA public key: the new envelope
// cannot be unwrapped here (Verified is false), but the V3 commitment was
// checked, and the holder of the private key reads the object.
func TestRewrapToWrapOnlyKey(t *testing.T) {
	raw, bucket := realS3(t)
	ctx := context.Background()
	old := newAES(t, "old")
	pub, err := keyring.NewRSAPublic(&rsaKey(2).PublicKey, map[string]string{"kid": "escrow"})
	require.NoError(t, err)
	priv := newRSA(t, 2, "escrow")
	for _, v := range variants {
		key := "wo/" + v.String()
		pt := random(100)
		put(t, newClient(t, raw, old, v.apply), bucket, key, bytes.NewReader(pt))
		c := clientFor(t, raw, pub, []keyring.Keyring{old})
		out, err := c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: &key, EnforceRotation: true})
		require.NoError(t, err)
		require.Equal(t, s3crypto.Rewrapped, out.Status)
		require.False(t, out.Verified)
		require.True(t, out.Written)
		readsAs(t, reader(t, raw, priv), bucket, key, pt)
		// Matched by description, it is current (it cannot be unwrapped
		// here to prove more).
		out, err = c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: &key})
		require.NoError(t, err)
		require.Equal(t, s3crypto.AlreadyCurrent, out.Status)
	}
}

// TestRewrapObjectLock: an object under object lock cannot be rewritten by
// versitygw (its buckets have no versioning here); the rewrap fails and the
// object is intact. On AWS, object lock implies versioning: the copy becomes
// a new version with the same lock settings, and the locked old version
// keeps the old envelope.
func TestRewrapObjectLock(t *testing.T) {
	raw, bucket := realS3(t)
	ctx := context.Background()
	locked := bucket + "-lock"
	_, err := raw.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &locked, ObjectLockEnabledForBucket: aws.Bool(true)})
	require.NoError(t, err)
	old := newAES(t, "old")
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	pt := []byte("retained")
	_, err = newClient(t, raw, old).PutObject(ctx, &s3.PutObjectInput{
		Bucket: &locked, Key: aws.String("k"), Body: bytes.NewReader(pt),
		ObjectLockMode: types.ObjectLockModeGovernance, ObjectLockRetainUntilDate: &until,
		ObjectLockLegalHoldStatus: types.ObjectLockLegalHoldStatusOn,
	})
	require.NoError(t, err)
	before := snap(t, raw, locked, "k")
	require.Equal(t, types.ObjectLockModeGovernance, before.head.ObjectLockMode)
	c := clientFor(t, raw, newAES(t, "new"), []keyring.Keyring{old})
	_, err = c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &locked, Key: aws.String("k")})
	require.Error(t, err)
	t.Logf("locked object: %v", err)
	after := snap(t, raw, locked, "k")
	requireSameAttributes(t, before.head, after.head)
	require.Equal(t, before.head.Metadata, after.head.Metadata)
	readsAs(t, reader(t, raw, old), locked, "k", pt)
}

// pattern is a seekable reader of size bytes that repeats block: fast to
// generate (copy, not a loop per byte, which the race detector slows).
type pattern struct {
	block     []byte
	size, pos int64
}

func (p *pattern) Read(b []byte) (int, error) {
	if p.pos >= p.size {
		return 0, io.EOF
	}
	off := p.pos % int64(len(p.block))
	n := copy(b, p.block[off:min(int64(len(p.block)), off+p.size-p.pos)])
	p.pos += int64(n)
	return n, nil
}

func (p *pattern) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += p.pos
	case io.SeekEnd:
		off += p.size
	}
	if off < 0 {
		return 0, errors.New("negative seek")
	}
	p.pos = off
	return off, nil
}
