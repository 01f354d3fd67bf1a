package kafka

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"
)

// SASL mechanisms a client can authenticate with. Both keep the password
// off the wire; PLAIN, which would send it, is not offered.
const (
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"
	MechanismSCRAMSHA512 = "SCRAM-SHA-512"
)

// brokerScheme marks a broker address that carries credentials:
// kafka://user:password@host:port, optionally ?mechanism=SCRAM-SHA-256
// (SCRAM-SHA-512 otherwise).
const brokerScheme = "kafka"

// SASL is the identity a client proves to the broker.
type SASL struct {
	Mechanism string // MechanismSCRAMSHA512 if empty
	User      string
	Password  string
}

func (s SASL) mechanism() string {
	if s.Mechanism == "" {
		return MechanismSCRAMSHA512
	}
	return s.Mechanism
}

func (s SASL) validate() error {
	var errs []error
	if m := s.mechanism(); m != MechanismSCRAMSHA256 && m != MechanismSCRAMSHA512 {
		errs = append(errs, fmt.Errorf("SASL mechanism %q is not supported (have %s, %s)", m, MechanismSCRAMSHA512, MechanismSCRAMSHA256))
	}
	if s.User == "" {
		errs = append(errs, errors.New("SASL user is empty"))
	}
	if s.Password == "" {
		errs = append(errs, errors.New("SASL password is empty"))
	}
	return errors.Join(errs...)
}

// BrokerURL is broker address addr ("host:port") carrying the credentials
// s, in the form every function of this package takes as a broker:
// kafka://user:password@host:port. It holds the password: never log it
// (Redact).
func BrokerURL(addr string, s SASL) string {
	u := url.URL{Scheme: brokerScheme, User: url.UserPassword(s.User, s.Password), Host: addr}
	if s.mechanism() != MechanismSCRAMSHA512 {
		u.RawQuery = url.Values{"mechanism": {s.mechanism()}}.Encode()
	}
	return u.String()
}

// Redact returns brokers with their passwords replaced, for logs.
func Redact(brokers []string) []string {
	out := make([]string, len(brokers))
	for i, b := range brokers {
		if u, err := url.Parse(b); err == nil && u.Scheme == brokerScheme && u.User != nil {
			b = u.Redacted()
		}
		out[i] = b
	}
	return out
}

// parseBrokers splits broker addresses into plain "host:port" addresses and
// the credentials some of them carry. Credentials apply to the whole
// client, so two different ones are an error.
func parseBrokers(brokers []string) ([]string, *SASL, error) {
	var (
		addrs []string
		auth  *SASL
	)
	for _, b := range brokers {
		if !strings.HasPrefix(b, brokerScheme+"://") {
			addrs = append(addrs, b)
			continue
		}
		u, err := url.Parse(b)
		if err != nil {
			return nil, nil, fmt.Errorf("broker %s: %w", Redact([]string{b})[0], errors.Unwrap(err))
		}
		if _, _, err := net.SplitHostPort(u.Host); err != nil || u.Path != "" {
			return nil, nil, fmt.Errorf("broker %s: want kafka://user:password@host:port", u.Redacted())
		}
		addrs = append(addrs, u.Host)
		if u.User == nil {
			continue
		}
		pass, _ := u.User.Password()
		s := SASL{Mechanism: u.Query().Get("mechanism"), User: u.User.Username(), Password: pass}
		if err := s.validate(); err != nil {
			return nil, nil, fmt.Errorf("broker %s: %w", u.Redacted(), err)
		}
		if auth != nil && *auth != s {
			return nil, nil, errors.New("brokers carry different credentials; a client has one identity")
		}
		auth = &s
	}
	if len(addrs) == 0 {
		return nil, nil, errors.New("no broker address")
	}
	return addrs, auth, nil
}

// clientConfig is SaramaConfig(clientID) for brokers: the plain addresses
// to dial and, if the brokers carry credentials, SASL/SCRAM set up to
// present them.
func clientConfig(brokers []string, clientID string) ([]string, *sarama.Config, error) {
	addrs, auth, err := parseBrokers(brokers)
	if err != nil {
		return nil, nil, err
	}
	c := SaramaConfig(clientID)
	if auth != nil {
		auth.apply(c)
	}
	return addrs, c, nil
}

func (s SASL) apply(c *sarama.Config) {
	c.Net.SASL.Enable = true
	// v1: the exchange travels in SaslAuthenticate requests, which Kafka
	// 1.0+ and kfake expect; v0 sends raw bytes outside the protocol.
	c.Net.SASL.Version = sarama.SASLHandshakeV1
	c.Net.SASL.Handshake = true
	c.Net.SASL.User = s.User
	c.Net.SASL.Password = s.Password
	hash := scram.SHA512
	c.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
	if s.mechanism() == MechanismSCRAMSHA256 {
		hash = scram.SHA256
		c.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
	}
	c.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: hash} }
}

// scramClient is sarama's SCRAM client over xdg-go/scram (sarama ships
// none of its own).
type scramClient struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func (c *scramClient) Begin(user, password, authzID string) error {
	client, err := c.hash.NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	c.conv = client.NewConversation()
	return nil
}

func (c *scramClient) Step(challenge string) (string, error) { return c.conv.Step(challenge) }
func (c *scramClient) Done() bool                            { return c.conv.Done() }

// ClientConfig is the sarama configuration and plain addresses for
// brokers (which may carry credentials, see BrokerURL), for code that must
// use sarama itself: benchmarks against the raw client, tools.
func ClientConfig(brokers []string, clientID string) ([]string, *sarama.Config, error) {
	return clientConfig(brokers, clientID)
}
