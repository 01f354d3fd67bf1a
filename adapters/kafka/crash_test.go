package kafka

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// brokerChildEnv tells the test binary, started again as a child, to run
// only an embedded broker on the named directory.
const brokerChildEnv = "INTEGR8SCODE_TEST_BROKER_DIR"

// TestMain lets this test binary, started again by SurvivesKill9 with
// brokerChildEnv set, be the broker process that test kills.
func TestMain(m *testing.M) {
	if dir := os.Getenv(brokerChildEnv); dir != "" {
		os.Exit(brokerChild(dir))
	}
	os.Exit(m.Run())
}

// brokerChild starts a broker, prints its address and serves until killed
// (or until its stdin closes, so it never outlives the parent).
func brokerChild(dir string) int {
	e, err := StartEmbedded(EmbeddedConfig{Dir: dir, Logger: testLogger()})
	if err != nil {
		fmt.Printf("ERROR %v\n", err)
		return 1
	}
	fmt.Printf("BROKER %s\n", e.Brokers()[0])
	io.Copy(io.Discard, os.Stdin)
	e.Close()
	return 0
}

func TestEmbeddedCrash(t *testing.T) {
	t.Run("SurvivesKill9", func(t *testing.T) {
		dir := t.TempDir()
		child, broker := startBrokerChild(t, dir)

		brokers := []string{broker}
		executions := executionIDs("crash", 10)
		published := publishEvents(t, newPublisher(t, brokers), executions, 5)
		consumeAndCommit(t, brokers, "G", len(published))

		// SIGKILL: no Close, no final save. Only what kfake wrote before
		// answering each request remains. (This holds without SyncWrites
		// too: the page cache outlives the process. SyncWrites is for a
		// crash of the machine, which a test cannot stage.)
		if err := child.Process.Kill(); err != nil {
			t.Fatalf("kill broker: %v", err)
		}
		child.Wait()

		// Had the broker shut down cleanly it would have saved partition
		// snapshots; their absence shows the restart below recovers from
		// the segment files alone.
		if snaps, _ := filepath.Glob(filepath.Join(dir, "partitions", "*", "snapshot.json")); len(snaps) > 0 {
			t.Fatalf("found %s: the broker was not killed, it shut down", snaps[0])
		}

		// The kernel dropped the child's directory lock with the process.
		e := startBroker(t, dir)
		assertReopened(t, e.Brokers(), executions, published)
	})
}

// startBrokerChild runs this test binary as a broker process on dir and
// returns it with the address it listens on.
func startBrokerChild(t *testing.T, dir string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), brokerChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	// Our own pipe, not cmd.StdoutPipe: Wait would close that one under the
	// reader below. The read end sees EOF when the child dies.
	stdout, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = w
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start broker child: %v", err)
	}
	w.Close()
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
		stdout.Close()
	})

	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "BROKER ") || strings.HasPrefix(l, "ERROR ") {
				lines <- l
				break
			}
		}
		io.Copy(io.Discard, stdout) // keep the child from blocking on a full pipe
		close(lines)
	}()
	select {
	case l, ok := <-lines:
		if !ok || !strings.HasPrefix(l, "BROKER ") {
			t.Fatalf("broker child did not start: %q", l)
		}
		return cmd, strings.TrimPrefix(l, "BROKER ")
	case <-time.After(waitFor):
		t.Fatalf("broker child printed no address within %s", waitFor)
	}
	return nil, ""
}
