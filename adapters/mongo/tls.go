package mongo

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// The embedded store authenticates clients by TLS certificate: FerretDB
// 1.24's embeddable package offers no user authentication with the SQLite
// backend (its PLAIN login only forwards credentials to PostgreSQL, and
// SCRAM users are an internal, unexposed option), but its TLS listener,
// given a CA, demands and verifies a client certificate. The platform
// generates a private CA, a server certificate for 127.0.0.1 and one client
// certificate into <dir>/tls on first start, and keeps no CA key: nobody,
// the platform included, can issue another client certificate.
const (
	tlsDirName     = "tls"
	caFileName     = "ca.pem"         // the CA certificate (public)
	serverCertName = "server.pem"     // the server's certificate
	serverKeyName  = "server-key.pem" // and its key
	clientFileName = "client.pem"     // the client's certificate and key, as tlsCertificateKeyFile wants them
)

// certValidity is how long generated certificates live. A start within
// certRenewBefore of the end generates a new set (clients of other
// processes then need a restart to read it).
const (
	certValidity    = 10 * 365 * 24 * time.Hour
	certRenewBefore = 30 * 24 * time.Hour
)

// tlsFiles are the paths of one certificate set.
type tlsFiles struct{ dir string }

func (f tlsFiles) ca() string         { return filepath.Join(f.dir, caFileName) }
func (f tlsFiles) serverCert() string { return filepath.Join(f.dir, serverCertName) }
func (f tlsFiles) serverKey() string  { return filepath.Join(f.dir, serverKeyName) }
func (f tlsFiles) client() string     { return filepath.Join(f.dir, clientFileName) }

// ensureTLS returns the certificate set under dir/tls, generating it if it
// is missing or about to expire.
func ensureTLS(dir string, now time.Time) (tlsFiles, bool, error) {
	files := tlsFiles{dir: filepath.Join(dir, tlsDirName)}
	cert, err := tls.LoadX509KeyPair(files.serverCert(), files.serverKey())
	switch {
	case err == nil && cert.Leaf != nil && now.Add(certRenewBefore).Before(cert.Leaf.NotAfter):
		if _, err := os.Stat(files.client()); err == nil {
			return files, false, nil
		}
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return files, false, fmt.Errorf("server certificate in %s (delete the directory to have a new set generated): %w", files.dir, err)
	}
	// Build the new set aside and swap it in by renaming the directory, so
	// a crash leaves either the old set or the new one, never a mix.
	tmp, err := os.MkdirTemp(dir, tlsDirName+".new-")
	if err != nil {
		return files, false, err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := generateTLS(tlsFiles{dir: tmp}, now); err != nil {
		return files, false, fmt.Errorf("generate certificates: %w", err)
	}
	if err := os.RemoveAll(files.dir); err != nil {
		return files, false, err
	}
	if err := os.Rename(tmp, files.dir); err != nil {
		return files, false, err
	}
	return files, true, nil
}

// generateTLS writes a CA, a server certificate for 127.0.0.1 and
// localhost, and a client certificate, all signed by the CA, into f.dir.
func generateTLS(f tlsFiles, now time.Time) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	ca := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "integr8scode embedded store CA"},
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := sign(ca, ca, &caKey.PublicKey, caKey, now)
	if err != nil {
		return err
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		return err
	}
	if err := writePEM(f.ca(), pemBlock("CERTIFICATE", caDER)); err != nil {
		return err
	}
	leaf := func(name string, usage x509.ExtKeyUsage, path ...string) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			Subject:     pkix.Name{CommonName: name},
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		if usage == x509.ExtKeyUsageServerAuth {
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
			tmpl.DNSNames = []string{"localhost"}
		}
		der, err := sign(tmpl, ca, &key.PublicKey, caKey, now)
		if err != nil {
			return err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return err
		}
		if len(path) == 1 {
			return writePEM(path[0], pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", keyDER))
		}
		return errors.Join(writePEM(path[0], pemBlock("CERTIFICATE", der)), writePEM(path[1], pemBlock("PRIVATE KEY", keyDER)))
	}
	return errors.Join(
		leaf("integr8scode embedded store", x509.ExtKeyUsageServerAuth, f.serverCert(), f.serverKey()),
		leaf("integr8scode", x509.ExtKeyUsageClientAuth, f.client()),
	)
}

func sign(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, key *ecdsa.PrivateKey, now time.Time) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-time.Hour) // a clock a little behind still accepts it
	tmpl.NotAfter = now.Add(certValidity)
	return x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// writePEM writes the blocks to a new 0600 file and syncs it.
func writePEM(path string, blocks ...[]byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	for _, b := range blocks {
		if _, err = f.Write(b); err != nil {
			break
		}
	}
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}
