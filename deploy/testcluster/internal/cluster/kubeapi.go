package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// kubeAPI is the little of the Kubernetes REST API that Up needs, spoken with
// the admin certificate. (The project's runner uses client-go; this module stays
// on the standard library so that `go run` starts in a second.)
type kubeAPI struct {
	base string
	http *http.Client
}

func newKubeAPI(caFile string, admin identity) (*kubeAPI, error) {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("no certificate in %s", caFile)
	}
	cert, err := tls.LoadX509KeyPair(admin.cert, admin.key)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}
	return &kubeAPI{base: fmt.Sprintf("https://127.0.0.1:%d", APIServerPort), http: &http.Client{Transport: tr}}, nil
}

// apiError is a non-2xx answer.
type apiError struct {
	Code    int
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Code, e.Message) }

func isConflict(err error) bool {
	e, ok := err.(*apiError)
	return ok && e.Code == http.StatusConflict
}

// do sends body (if any) as JSON and decodes a 2xx answer into out (if any).
func (k *kubeAPI) do(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, k.base+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := k.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var status struct{ Message string }
		if json.Unmarshal(data, &status) != nil || status.Message == "" {
			status.Message = string(data)
		}
		return &apiError{Code: resp.StatusCode, Message: status.Message}
	}
	if out != nil {
		if s, ok := out.(*string); ok {
			*s = string(data)
			return nil
		}
		return json.Unmarshal(data, out)
	}
	return nil
}

// create POSTs obj, treating "already exists" as success.
func (k *kubeAPI) create(ctx context.Context, path string, obj any) error {
	if err := k.do(ctx, http.MethodPost, path, obj, nil); err != nil && !isConflict(err) {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return nil
}

// pod is the part of a Pod that Up reads.
type pod struct {
	Metadata struct {
		Name            string `json:"name"`
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
	Status struct {
		Phase             string `json:"phase"`
		Reason            string `json:"reason"`
		Message           string `json:"message"`
		ContainerStatuses []struct {
			State map[string]struct {
				Reason   string `json:"reason"`
				Message  string `json:"message"`
				ExitCode int    `json:"exitCode"`
			} `json:"state"`
		} `json:"containerStatuses"`
	} `json:"status"`
}

// watchPod follows one pod from resourceVersion rv until done says so.
func (k *kubeAPI) watchPod(ctx context.Context, ns, name, rv string, done func(*pod) bool) (*pod, error) {
	path := fmt.Sprintf("%s/api/v1/namespaces/%s/pods?watch=1&fieldSelector=metadata.name%%3D%s&resourceVersion=%s&allowWatchBookmarks=false", k.base, ns, name, rv)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := k.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(resp.Body)
		return nil, &apiError{Code: resp.StatusCode, Message: string(data)}
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var ev struct {
			Type   string
			Object json.RawMessage
		}
		if err := dec.Decode(&ev); err != nil {
			return nil, fmt.Errorf("watch pod %s/%s: %w", ns, name, err)
		}
		var p pod
		if err := json.Unmarshal(ev.Object, &p); err != nil {
			return nil, err
		}
		if ev.Type == "ERROR" || ev.Type == "DELETED" {
			return &p, fmt.Errorf("watch pod %s/%s: %s event", ns, name, ev.Type)
		}
		if done(&p) {
			return &p, nil
		}
	}
}
