package format

import (
	"crypto/hkdf"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
)

// V3 (algorithm suite 0x0073) key schedule: HKDF-SHA-512 with the message ID
// as salt and the data key as input keying material; the info strings carry
// the suite ID. The content is sealed under the derived key with a fixed
// nonce, which is safe because every message ID, and so every derived key,
// is fresh.
var (
	v3SuiteID    = []byte{0x00, 0x73}
	v3CommitInfo = string(v3SuiteID) + "COMMITKEY"
	v3DeriveInfo = string(v3SuiteID) + "DERIVEKEY"
	v3Nonce      = []byte{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}
)

// v3Commitment returns the HKDF pseudorandom key and the key commitment of
// a V3 object.
func v3Commitment(dataKey, messageID []byte) (prk, commitment []byte, err error) {
	if len(dataKey) != DataKeySize || len(messageID) != MessageIDSize {
		return nil, nil, fmt.Errorf("%w: V3 needs a %d-byte data key and a %d-byte message ID", ErrMalformed, DataKeySize, MessageIDSize)
	}
	if prk, err = hkdf.Extract(sha512.New, dataKey, messageID); err != nil {
		return nil, nil, err
	}
	commitment, err = hkdf.Expand(sha512.New, prk, v3CommitInfo, CommitmentSize)
	return prk, commitment, err
}

// deriveV3 returns the key commitment and the content key of a new V3 object.
func deriveV3(dataKey, messageID []byte) (commitment, contentKey []byte, err error) {
	prk, commitment, err := v3Commitment(dataKey, messageID)
	if err != nil {
		return nil, nil, err
	}
	contentKey, err = hkdf.Expand(sha512.New, prk, v3DeriveInfo, DataKeySize)
	return commitment, contentKey, err
}

// openV3Key checks the stored commitment in constant time and only then
// derives the content key, so a key that fails the commitment is never used.
func openV3Key(dataKey, messageID, stored []byte) ([]byte, error) {
	prk, commitment, err := v3Commitment(dataKey, messageID)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(commitment, stored) != 1 {
		return nil, fmt.Errorf("%w: key commitment does not match", ErrAuthentication)
	}
	return hkdf.Expand(sha512.New, prk, v3DeriveInfo, DataKeySize)
}

// CheckDataKey reports whether dataKey is the data key the envelope was
// sealed under, as far as the format can tell without the body: for V3 the
// key commitment must match (compared in constant time), and so must the
// segmented format's; V1 and V2 commit to
// nothing, so any key passes. A rewrap checks this before storing a new
// wrapped key, so it can never replace a working envelope with a wrong one.
func (e *Envelope) CheckDataKey(dataKey []byte) error {
	if e.Format == FormatSegmented {
		commitment, _, err := segKeys(dataKey, e.ObjectID, e.SegmentSize, false)
		if err != nil {
			return err
		}
		if subtle.ConstantTimeCompare(commitment, e.Commitment) != 1 {
			return fmt.Errorf("%w: key commitment does not match", ErrAuthentication)
		}
		return nil
	}
	if e.Format != FormatV3 {
		return nil
	}
	_, commitment, err := v3Commitment(dataKey, e.MessageID)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(commitment, e.Commitment) != 1 {
		return fmt.Errorf("%w: key commitment does not match", ErrAuthentication)
	}
	return nil
}
