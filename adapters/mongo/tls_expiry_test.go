package mongo

import (
	"testing"
	"time"
)

func TestCertificateExpiry(t *testing.T) {
	now := time.Now()
	files, _, err := ensureTLS(t.TempDir(), now)
	if err != nil {
		t.Fatal(err)
	}
	got, err := (&Embedded{tls: files}).CertificateExpiry()
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(certValidity); got.Sub(want).Abs() > time.Minute {
		t.Errorf("expiry %s, want about %s (the set is generated valid for %s)", got, want, certValidity)
	}
}
