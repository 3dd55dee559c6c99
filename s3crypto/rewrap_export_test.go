package s3crypto

// SetMultipartCopyForTest lowers the size above which Rewrap copies an
// object part by part, and the part size, so that tests exercise the
// multipart copy on small objects. It returns a function that restores them.
func SetMultipartCopyForTest(threshold, partSize int64) (restore func()) {
	t, p := multipartCopyThreshold, multipartCopyPartSize
	multipartCopyThreshold, multipartCopyPartSize = threshold, partSize
	return func() { multipartCopyThreshold, multipartCopyPartSize = t, p }
}

// SetRewrapWindowForTest sets how far RewrapAll's listing may run ahead of
// its checkpoint. It returns a function that restores it.
func SetRewrapWindowForTest(n int) (restore func()) {
	old := maxWindow
	maxWindow = n
	return func() { maxWindow = old }
}
