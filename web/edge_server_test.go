package web

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// shortEdge is DefaultEdge scaled down so the tests wait seconds, not
// minutes; the mechanism is the same.
var shortEdge = Edge{ReadHeader: time.Second, Read: 2 * time.Second, Write: 2 * time.Second, Idle: time.Second, MaxHeaderBytes: 8 << 10}

func TestTricklingBodiesAreCutOff(t *testing.T) {
	a := startAPI(t, func(_ *Deps, srv *http.Server) { shortEdge.Configure(srv) })
	conn, err := net.Dial("tcp", strings.TrimPrefix(a.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /api/v1/executions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
	began := time.Now()
	closed := make(chan struct{})
	go func() { // one byte every 200 ms, for as long as the server listens
		defer close(closed)
		for time.Since(began) < 20*time.Second {
			if _, err := conn.Write([]byte(" ")); err != nil {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	rd := bufio.NewReader(conn)
	line, _ := rd.ReadString('\n')
	io.Copy(io.Discard, rd) // then the connection must end
	if d := time.Since(began); d > shortEdge.Read+2*time.Second {
		t.Fatalf("a trickling body held the connection for %s (answer %q)", d, line)
	}
	<-closed
}

func TestIdleKeepAlivesAreClosed(t *testing.T) {
	a := startAPI(t, func(_ *Deps, srv *http.Server) { shortEdge.Configure(srv) })
	conn, err := net.Dial("tcp", strings.TrimPrefix(a.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	rd := bufio.NewReader(conn)
	resp, err := http.ReadResponse(rd, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	began := time.Now()
	if n, _ := io.Copy(io.Discard, rd); n != 0 {
		t.Fatalf("unexpected %d bytes", n)
	}
	if d := time.Since(began); d > shortEdge.Idle+2*time.Second {
		t.Fatalf("idle keep-alive stayed open %s", d)
	}
}

// TestStreamsOutliveTheServerTimeouts holds a stream open past the read and
// write timeouts: its keepalives still arrive and its context lives.
func TestStreamsOutliveTheServerTimeouts(t *testing.T) {
	a := startAPI(t, func(d *Deps, srv *http.Server) { shortEdge.Configure(srv) })
	id := decodeExecution(t, call(t, http.MethodPost, a.URL+"/api/v1/executions", `{"script":"print(1)"}`)).ID
	old := streamKeepaliveEvery
	streamKeepaliveEvery = 500 * time.Millisecond
	defer func() { streamKeepaliveEvery = old }()
	resp, err := http.Get(a.URL + "/api/v1/executions/" + id + "/stream")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%v %v", resp, err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	until := time.Now().Add(shortEdge.Read + shortEdge.Write + time.Second)
	keepalives := 0
	for time.Now().Before(until) {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended after %d keepalives: %v", keepalives, err)
		}
		if strings.HasPrefix(line, ": keepalive") {
			keepalives++
		}
	}
	if keepalives < 4 {
		t.Fatalf("%d keepalives", keepalives)
	}
}

// TestWaitOutlivesTheWriteTimeout waits (?wait=true) longer than the
// server's write timeout and still gets its answer.
func TestWaitOutlivesTheWriteTimeout(t *testing.T) {
	a := startAPI(t, func(d *Deps, srv *http.Server) {
		shortEdge.Configure(srv)
		d.MaxWait = shortEdge.Write + time.Second
	})
	r := call(t, http.MethodPost, a.URL+"/api/v1/executions?wait=true", `{"script":"print(1)"}`)
	if r.Status != http.StatusAccepted || decodeExecution(t, r).Status != "queued" {
		t.Fatalf("got %d %s", r.Status, r.Body)
	}
}
