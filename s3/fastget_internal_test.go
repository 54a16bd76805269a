package s3

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

// TestChecksumsMatch pins each algorithm to its standard check value (the
// checksum of "123456789"), so that a wrong table or polynomial cannot pass
// for a match.
func TestChecksumsMatch(t *testing.T) {
	data := []byte("123456789")
	b64 := func(b ...byte) string { return base64.StdEncoding.EncodeToString(b) }
	for _, tc := range []struct {
		header, value string
	}{
		{"X-Amz-Checksum-Crc32", b64(0xcb, 0xf4, 0x39, 0x26)},
		{"X-Amz-Checksum-Crc32c", b64(0xe3, 0x06, 0x92, 0x83)},
		{"X-Amz-Checksum-Crc64nvme", b64(0xae, 0x8b, 0x14, 0x86, 0x0a, 0x79, 0x98, 0x88)},
		{"X-Amz-Checksum-Sha1", b64(0xf7, 0xc3, 0xbc, 0x1d, 0x80, 0x8e, 0x04, 0x73, 0x2a, 0xdf, 0x67, 0x99, 0x65, 0xcc, 0xc3, 0x4c, 0xa7, 0xae, 0x34, 0x41)},
		{"X-Amz-Checksum-Sha256", "FeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiU="},
	} {
		h := http.Header{}
		h.Set(tc.header, tc.value)
		if !checksumsMatch(h, data) {
			t.Errorf("%s: %q does not match %q", tc.header, h.Get(tc.header), data)
		}
		if checksumsMatch(h, []byte("123456788")) {
			t.Errorf("%s: other data matches too", tc.header)
		}
	}
	// A multipart upload's composite checksum covers parts: skipped.
	h := http.Header{"X-Amz-Checksum-Crc32": {"AAAAAA==-3"}}
	if !checksumsMatch(h, data) {
		t.Error("a composite checksum was checked against the whole object")
	}
	if !checksumsMatch(http.Header{}, data) {
		t.Error("no checksum: want a match (nothing to check)")
	}
}

func TestErrorCode(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>a</Key></Error>`, "NoSuchKey"},
		{`<Error><Code>NoSuchBucket</Code><Message>&lt;Code&gt;NoSuchKey&lt;/Code&gt;</Message></Error>`, "NoSuchBucket"},
		{`<Error><Code> NoSuchKey </Code></Error>`, "NoSuchKey"},
		{`<Error><Code>NoSuchKey`, ""},
		{`not found`, ""},
		{``, ""},
	} {
		if got := errorCode(strings.NewReader(tc.body)); got != tc.want {
			t.Errorf("errorCode(%q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}
