package mongo

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"time"
)

// CertificateExpiry is when the first certificate of the embedded store's
// TLS set (CA, server, client) expires. A start within 30 days of it makes
// a new set; a process that runs longer than that does not, so the
// platform reports the date for an alert.
func (e *Embedded) CertificateExpiry() (time.Time, error) {
	var first time.Time
	for _, f := range []string{e.tls.ca(), e.tls.serverCert(), e.tls.client()} {
		b, err := os.ReadFile(f)
		if err != nil {
			return time.Time{}, err
		}
		for block, rest := pem.Decode(b); block != nil; block, rest = pem.Decode(rest) {
			if block.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return time.Time{}, fmt.Errorf("%s: %w", f, err)
			}
			if first.IsZero() || c.NotAfter.Before(first) {
				first = c.NotAfter
			}
		}
	}
	if first.IsZero() {
		return time.Time{}, fmt.Errorf("no certificate in %s", e.tls.dir)
	}
	return first, nil
}
