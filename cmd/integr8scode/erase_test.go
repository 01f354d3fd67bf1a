package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/integr8scode/integr8scode/adapters/mongo"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/web"
)

// TestErasureLeavesNoContentAnywhere runs a script whose text, stdin and
// output carry a marker, erases it with `integr8scode executions erase`
// while the platform runs, and then looks for the marker everywhere: the
// API, every file under the data directory (Kafka's segments, the store's
// SQLite files with their write-ahead log, the sandbox directory, any
// other) and every document of every collection, read through the
// MongoDB driver. The content never was anywhere in the clear (it is
// sealed before it leaves the API and the runner); the key that opened it
// is gone from the store's records and files. The ledger still verifies,
// offline too, and views rebuilt from the log say erased.
func TestErasureLeavesNoContentAnywhere(t *testing.T) {
	dir := t.TempDir()
	base, stop := startUp(t, dir)
	marker := "marker-" + randomHex(t)
	script := "import sys\n# " + marker + "-script\nprint('" + marker + "-out', sys.stdin.read())\nprint('" + marker + "-err', file=sys.stderr)\n"
	r := do(t, http.MethodPost, base+"/api/v1/executions?wait=true", map[string]any{"script": script, "stdin": marker + "-in"})
	var e web.Execution
	r.decode(t, &e)
	if r.Status != http.StatusOK || e.Status != domain.StatusCompleted || !strings.Contains(e.Output, marker+"-out "+marker+"-in") ||
		!strings.Contains(e.Errors, marker+"-err") || e.Script != script || e.Erased {
		t.Fatalf("run: %d %s", r.Status, r.Body)
	}
	id := e.ID
	waitEvents(t, base, id, 10*time.Second)
	db := storeDB(t, dir)
	key := contentKeyDoc(t, db, id)
	wrapped, _ := key["wrapped"].(bson.Binary)
	if len(wrapped.Data) == 0 {
		t.Fatalf("no content key for %s: %v", id, key)
	}
	wrappedB64 := []byte(base64.StdEncoding.EncodeToString(wrapped.Data))

	t.Run("before: the content is nowhere in the clear, and the search sees the stores", func(t *testing.T) {
		// The one copy in the clear is the script in its run's sandbox
		// bundle, which the sandbox needs and removes right after the
		// result went back (in the background): wait for that removal.
		waitFor(t, func() bool { return len(grepFiles(t, filepath.Join(dir, "sandbox"), []byte(marker))) == 0 })
		if found := grepFiles(t, dir, []byte(marker)); len(found) > 0 {
			t.Fatalf("the marker is in the clear in %v before any erasure", found)
		}
		if found := grepCollections(t, db, []byte(marker)); len(found) > 0 {
			t.Fatalf("the marker is in the clear in %v before any erasure", found)
		}
		// Not vacuous: the same searches find what the stores do hold.
		if found := grepFiles(t, filepath.Join(dir, "kafka"), []byte(id)); len(found) == 0 {
			t.Fatal("the search finds nothing of the execution in Kafka's files")
		}
		if found := grepFiles(t, filepath.Join(dir, "mongo"), wrappedB64); len(found) == 0 {
			t.Fatal("the search does not find the content key in the store's files")
		}
		if found := grepCollections(t, db, wrapped.Data); len(found) == 0 {
			t.Fatal("the search does not find the content key in the store's collections")
		}
	})

	code, out := runTool(t, "executions", "erase", id, "--data-dir", dir, "--actor", "operator")
	if code != 0 || !strings.Contains(out, "content erased") {
		t.Fatalf("executions erase: exit %d\n%s", code, out)
	}
	waitFor(t, func() bool {
		evs, _ := events(t, base, id)
		return get(t, base, id).Erased && evs[len(evs)-1].Type == domain.TypeExecutionErased
	})

	t.Run("after: erased says the API, and neither content nor key is anywhere", func(t *testing.T) {
		r := do(t, http.MethodGet, base+"/api/v1/executions/"+id, nil)
		var got web.Execution
		r.decode(t, &got)
		if bytes.Contains(r.Body, []byte(marker)) || !got.Erased || got.ErasedAt == nil || got.Script != "" || got.Stdin != "" ||
			got.Output != "" || got.Errors != "" || got.Status != domain.StatusCompleted {
			t.Fatalf("GET after erasure: %s", r.Body)
		}
		if res := do(t, http.MethodGet, base+"/api/v1/executions/"+id+"/result", nil); bytes.Contains(res.Body, []byte(marker)) {
			t.Fatalf("the compatible result shows the content: %s", res.Body)
		}
		evs, valid := events(t, base, id)
		if !valid || evs[len(evs)-1].Type != domain.TypeExecutionErased || evs[len(evs)-1].Actor != "operator" {
			t.Fatalf("events after erasure (chain valid %v): %+v", valid, evs)
		}
		for _, needle := range [][]byte{[]byte(marker), wrappedB64} {
			if found := grepFiles(t, dir, needle); len(found) > 0 {
				t.Fatalf("%.20s… is still in %v", needle, found)
			}
		}
		for _, needle := range [][]byte{[]byte(marker), wrapped.Data} {
			if found := grepCollections(t, db, needle); len(found) > 0 {
				t.Fatalf("%.20s… is still in %v", needle, found)
			}
		}
		if k := contentKeyDoc(t, db, id); k["wrapped"] != nil || k["shredded_at"] == nil {
			t.Fatalf("key record after erasure: %v", k)
		}
	})
	export := exportEvents(t, base, []string{id})
	keysDoc := do(t, http.MethodGet, base+"/api/v1/ledger/keys", nil).Body
	stop()

	t.Run("the ledger verifies, online and offline", func(t *testing.T) {
		if code, out := runTool(t, "ledger", "verify", "--data-dir", dir); code != 0 {
			t.Fatalf("ledger verify: exit %d\n%s", code, out)
		}
		if code, out := runTool(t, "projections", "compare", "--data-dir", dir); code != 0 {
			t.Fatalf("projections compare: exit %d\n%s", code, out)
		}
		tmp := t.TempDir()
		keys, ledger := filepath.Join(tmp, "keys.json"), filepath.Join(tmp, "ledger.jsonl")
		if os.WriteFile(keys, keysDoc, 0o644) != nil || os.WriteFile(ledger, export, 0o644) != nil {
			t.Fatal("write the export")
		}
		out, err := exec.Command("python3", "../../docs/events/verify_ledger.py", "export", ledger, "--keys", keys, "--json").CombinedOutput()
		if err != nil {
			t.Fatalf("verify_ledger.py: %v\n%s", err, out)
		}
	})
	t.Run("views rebuilt from the log say erased", func(t *testing.T) {
		dropViews(t, dir)
		base, _ := startUp(t, dir)
		got := get(t, base, id)
		if !got.Erased || got.Script != "" || got.Output != "" || got.Status != domain.StatusCompleted {
			t.Fatalf("rebuilt: %+v", got)
		}
	})
}

// TestRetentionErasesEndedExecutions: with --retention, an execution that
// ended longer ago than that is erased by the platform's sweep.
func TestRetentionErasesEndedExecutions(t *testing.T) {
	dir := t.TempDir()
	base, _ := startUpWith(t, dir, "--retention", "2s")
	r := do(t, http.MethodPost, base+"/api/v1/executions?wait=true", map[string]any{"script": "print('kept a moment')"})
	var e web.Execution
	r.decode(t, &e)
	if r.Status != http.StatusOK || e.Output != "kept a moment\n" {
		t.Fatalf("run: %d %s", r.Status, r.Body)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		evs, _ := events(t, base, e.ID)
		if get(t, base, e.ID).Erased && evs[len(evs)-1].Type == domain.TypeExecutionErased {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not erased two minutes after a retention of 2s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	evs, valid := events(t, base, e.ID)
	last := evs[len(evs)-1]
	if !valid || last.Type != domain.TypeExecutionErased || last.Actor != "retention" || !strings.Contains(string(last.Data), `"retention"`) {
		t.Fatalf("events: %+v", evs)
	}
	if got := get(t, base, e.ID); got.Output != "" || got.Script != "" {
		t.Fatalf("after retention: %+v", got)
	}
}

func randomHex(t *testing.T) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// storeDB connects to the store of the platform running in dir.
func storeDB(t *testing.T, dir string) *mongodrv.Database {
	t.Helper()
	uri, err := runningStoreURI(dir)
	if err != nil {
		t.Fatal(err)
	}
	client, err := mongo.Connect(t.Context(), uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Disconnect(context.Background()) })
	return client.Database("integr8scode")
}

func contentKeyDoc(t *testing.T, db *mongodrv.Database, id string) bson.M {
	t.Helper()
	var doc bson.M
	if err := db.Collection(mongo.CollContentKeys).FindOne(t.Context(), bson.D{{Key: "_id", Value: id}}).Decode(&doc); err != nil {
		t.Fatalf("content key of %s: %v", id, err)
	}
	return doc
}

// grepCollections lists the documents, of every collection of db, whose
// BSON holds needle.
func grepCollections(t *testing.T, db *mongodrv.Database, needle []byte) []string {
	t.Helper()
	names, err := db.ListCollectionNames(t.Context(), bson.D{})
	if err != nil || len(names) == 0 {
		t.Fatalf("collections: %v %v", names, err)
	}
	var found []string
	for _, name := range names {
		cur, err := db.Collection(name).Find(t.Context(), bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		for cur.Next(t.Context()) {
			if bytes.Contains(cur.Current, needle) {
				found = append(found, name+"/"+cur.Current.Lookup("_id").String())
			}
		}
		if err := cur.Err(); err != nil {
			t.Fatal(err)
		}
		cur.Close(t.Context())
	}
	return found
}

// grepFiles lists the files under dir that hold needle (as raw bytes, as
// JSON would escape nothing of it).
func grepFiles(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // a file removed while walking
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if bytes.Contains(b, needle) {
			found = append(found, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
