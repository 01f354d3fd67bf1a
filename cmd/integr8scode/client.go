package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/web"
)

// runClient submits a script file to a server, waits for the end, prints the
// script's stdout and stderr, and returns the script's exit code (1 when it
// ended without one, e.g. on timeout; 3 when the platform failed).
func runClient(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "http://127.0.0.1:8080", "base URL of an integr8scode server")
	stdinFile := fs.String("stdin", "", "file whose content is the script's stdin (- for this process's stdin)")
	timeout := fs.Duration("timeout", 0, "script timeout (0: the server's default)")
	token := fs.String("token", "", "personal API token (from POST /api/v1/auth/tokens) to run as its user; empty: anonymous")
	fs.Usage = func() { fmt.Fprintln(stderr, "usage: integr8scode run [flags] FILE"); fs.PrintDefaults() }
	if err := parseFlags(fs, args, getenv); err != nil {
		return 2, nil
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2, nil
	}
	script, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return 2, err
	}
	body := map[string]any{"script": string(script)}
	if *stdinFile != "" {
		var in []byte
		if *stdinFile == "-" {
			in, err = io.ReadAll(stdin)
		} else {
			in, err = os.ReadFile(*stdinFile)
		}
		if err != nil {
			return 2, err
		}
		body["stdin"] = string(in)
	}
	if *timeout > 0 {
		body["limits"] = map[string]any{"timeout_ms": timeout.Milliseconds()}
	}
	c := apiClient{base: strings.TrimRight(*server, "/"), token: *token}
	var exec web.Execution
	if err := c.call(ctx, http.MethodPost, "/api/v1/executions?wait=true", body, &exec); err != nil {
		return 3, err
	}
	for !exec.Status.Terminal() {
		select {
		case <-ctx.Done():
			return 130, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if err := c.call(ctx, http.MethodGet, "/api/v1/executions/"+exec.ID, nil, &exec); err != nil {
			return 3, err
		}
	}
	io.WriteString(stdout, exec.Output)
	io.WriteString(stderr, exec.Errors)
	switch {
	case exec.Status == domain.StatusCompleted:
		return 0, nil
	case exec.ExitCode != nil && *exec.ExitCode != 0:
		return *exec.ExitCode, nil
	case exec.FailureReason == domain.VerdictSystemError:
		return 3, fmt.Errorf("execution %s failed: system error", exec.ID)
	default:
		fmt.Fprintf(stderr, "\nexecution %s failed: %s\n", exec.ID, exec.FailureReason)
		return 1, nil
	}
}

// apiClient calls a server's API, as a user when it has a token.
type apiClient struct {
	base  string
	token string // sent as Authorization: Bearer; empty: anonymous
}

// call sends a JSON request and decodes a JSON answer, turning the API's
// error body into an error.
func (c apiClient) call(ctx context.Context, method, path string, in, out any) error {
	url := c.base + path
	var rd io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("%s %s: %d %s: %s", method, url, resp.StatusCode, e.Error.Code, e.Error.Message)
		}
		return fmt.Errorf("%s %s: %s", method, url, resp.Status)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return errors.Join(fmt.Errorf("%s %s: bad response", method, url), err)
	}
	return nil
}
