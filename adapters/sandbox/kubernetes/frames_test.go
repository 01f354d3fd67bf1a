package kubernetes

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

func frame(kind byte, data string) []byte {
	b := []byte{kind, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(data)))
	return append(b, data...)
}

func stream(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

func TestDemux(t *testing.T) {
	in := stream(frame('o', "out 1\n"), frame('e', "err\n"), frame('o', ""), frame('o', "\x00\xffbin"),
		frame('x', "status=exited code=3 signal=0 wall_ns=12000000 cpu_ns=5000000 peak_bytes=1024 oom_kills=0"),
		[]byte("ignored after the end"))
	// Every way of cutting the stream in two writes gives the same result.
	for cut := 0; cut <= len(in); cut++ {
		d := newDemux(100)
		d.Write(in[:cut])
		d.Write(in[cut:])
		out, errOut, trunc, end := d.result()
		if out != "out 1\n\x00\xffbin" || errOut != "err\n" || trunc || end == nil {
			t.Fatalf("cut %d: %q %q %v %v", cut, out, errOut, trunc, end)
		}
		want := report{Status: "exited", Code: 3, Signal: 0, WallNs: 12e6, CPUNs: 5e6, PeakBytes: 1024, OOMKills: 0}
		if *end != want {
			t.Fatalf("cut %d: report %+v", cut, *end)
		}
	}
}

func TestDemuxCap(t *testing.T) {
	d := newDemux(10)
	d.Write(stream(frame('o', "12345678"), frame('e', "ab"), frame('o', "9abcdef")))
	out, errOut, trunc, _ := d.result()
	if out != "123456789a" || errOut != "ab" || !trunc {
		t.Fatalf("%q %q %v", out, errOut, trunc)
	}
	select {
	case <-d.over:
	default:
		t.Fatal("over not signalled")
	}
}

// A stream that is not made of frames (a script writing to the
// supervisor's stdout itself) is kept as raw stdout, under the cap.
func TestDemuxRaw(t *testing.T) {
	d := newDemux(1 << 10)
	d.Write(frame('o', "framed "))
	d.Write([]byte("garbage that is no frame"))
	d.Write(frame('x', "status=exited"))
	out, _, _, end := d.result()
	if !strings.HasPrefix(out, "framed garbage that is no frame") || end != nil {
		t.Fatalf("%q %v", out, end)
	}
	d = newDemux(8)
	d.Write(append([]byte{'o', 0xff, 0xff, 0xff, 0xff}, strings.Repeat("y", 100)...))
	if out, _, trunc, _ := d.result(); len(out) != 8 || !trunc {
		t.Fatalf("oversized frame: %q %v", out, trunc)
	}
}
