package main

import (
	"io"
	"strings"
	"testing"
)

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"ErrRoleWithoutInfrastructure", []string{"runner"}, nil,
			[]string{"--kafka-brokers (INTEGR8SCODE_KAFKA_BROKERS) is required", "--mongodb-uri (INTEGR8SCODE_MONGODB_URI) is required"}},
		{"ErrKubernetesWithoutImage", []string{"runner", "--runner", "kubernetes"},
			map[string]string{"INTEGR8SCODE_KAFKA_BROKERS": "127.0.0.1:1", "INTEGR8SCODE_MONGODB_URI": "mongodb://127.0.0.1:1"},
			[]string{"--runner kubernetes needs --sandbox-image"}},
		{"ErrSASLUserWithoutPasswordFile", []string{"api", "--kafka-sasl-user", "u", "--kafka-sasl-mechanism", "PLAIN"},
			map[string]string{"INTEGR8SCODE_KAFKA_BROKERS": "127.0.0.1:1", "INTEGR8SCODE_MONGODB_URI": "mongodb://127.0.0.1:1"},
			[]string{"--kafka-sasl-user and --kafka-sasl-password-file go together", `--kafka-sasl-mechanism "PLAIN" is not supported`}},
		{"ErrSASLPasswordFileMissing", []string{"api", "--kafka-sasl-user", "u", "--kafka-sasl-password-file", "/nonexistent/password"},
			map[string]string{"INTEGR8SCODE_KAFKA_BROKERS": "127.0.0.1:1", "INTEGR8SCODE_MONGODB_URI": "mongodb://127.0.0.1:1"},
			[]string{"--kafka-sasl-password-file: open /nonexistent/password"}},
		{"ErrUnknownRunner", []string{"up", "--runner", "docker"}, nil, []string{`--runner "docker" is not available`}},
		{"ErrMaximumBelowDefault", []string{"up", "--max-memory-bytes", "1024"}, nil, []string{"maximum limits must not be below the default limits"}},
		{"ErrBadEnvironment", []string{"up"}, map[string]string{"INTEGR8SCODE_SLOTS": "many"}, []string{"INTEGR8SCODE_SLOTS"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stderr strings.Builder
			code, err := run(t.Context(), append([]string{"integr8scode"}, c.args...),
				func(k string) string { return c.env[k] }, strings.NewReader(""), io.Discard, &stderr)
			if code == 0 || err == nil {
				t.Fatalf("code %d err %v", code, err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
