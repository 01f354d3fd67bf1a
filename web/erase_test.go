package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestErasingAnExecutionsContent: its owner (or an admin) erases an ended
// execution's content; GET then says erased and shows none of it, the
// ledger's chain still verifies, a running one is refused and another
// user's is not found.
func TestErasingAnExecutionsContent(t *testing.T) {
	a := startAPI(t, nil)
	alice, bob := register(t, a, "alice"), register(t, a, "bob")
	r := call(t, "POST", a.URL+"/api/v1/executions", `{"script":"print('erase-me-8121')","stdin":"stdin-8121"}`, alice.bearer()...)
	if r.Status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", r.Status, r.Body)
	}
	e := decodeExecution(t, r)
	if e.Script != "print('erase-me-8121')" || e.Stdin != "stdin-8121" || e.Erased {
		t.Fatalf("the submitter does not see its script: %+v", e)
	}
	path := a.URL + "/api/v1/executions/" + e.ID
	got := decodeExecution(t, call(t, "GET", path, "", alice.bearer()...))
	if got.Script != e.Script {
		t.Fatalf("GET shows script %q", got.Script)
	}

	t.Run("ErrQueued", func(t *testing.T) {
		if r := call(t, "DELETE", path+"/content", "", alice.bearer()...); r.Status != http.StatusConflict {
			t.Fatalf("erasing a queued execution: %d %s", r.Status, r.Body)
		}
		if got := decodeExecution(t, call(t, "GET", path, "", alice.bearer()...)); got.Script != e.Script {
			t.Fatal("a refused erasure hid the content")
		}
	})
	if r := call(t, "POST", path+"/cancel", "", alice.bearer()...); r.Status != http.StatusAccepted {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	t.Run("ErrNotFound for another user", func(t *testing.T) {
		if r := call(t, "DELETE", path+"/content", "", bob.bearer()...); r.Status != http.StatusNotFound {
			t.Fatalf("bob erased alice's execution: %d %s", r.Status, r.Body)
		}
	})
	t.Run("OK", func(t *testing.T) {
		r := call(t, "DELETE", path+"/content", "", alice.bearer()...)
		var out erasedResponse
		if r.Status != http.StatusOK || json.Unmarshal(r.Body, &out) != nil || !out.Erased || out.RecordedInTheClear || out.ExecutionID != e.ID {
			t.Fatalf("erase: %d %s", r.Status, r.Body)
		}
		waitFor(t, func() bool {
			got := decodeExecution(t, call(t, "GET", path, "", alice.bearer()...))
			return got.Erased && got.ErasedAt != nil
		})
		got := call(t, "GET", path, "", alice.bearer()...)
		if strings.Contains(string(got.Body), "8121") {
			t.Fatalf("GET after erasure still shows content: %s", got.Body)
		}
		ex := decodeExecution(t, got)
		if ex.Status != "failed" || ex.FailureReason != "cancelled" || ex.Script != "" || ex.Errors != "" {
			t.Fatalf("after erasure: %+v", ex)
		}
		evs := call(t, "GET", path+"/events", "", alice.bearer()...)
		var chain struct {
			ChainValid bool `json:"chain_valid"`
			Events     []struct {
				Record struct{ Type string }
			}
		}
		if err := json.Unmarshal(evs.Body, &chain); err != nil || !chain.ChainValid ||
			chain.Events[len(chain.Events)-1].Record.Type != "ExecutionErased" {
			t.Fatalf("events after erasure: %s", evs.Body)
		}
		if strings.Contains(string(evs.Body), "8121") {
			t.Fatal("the events show the content in the clear")
		}
		// The key is gone: its record is a tombstone.
		rec, ok, err := a.ledger.Content.Store().Get(context.Background(), e.ID)
		if err != nil || !ok || rec.ShreddedAt == nil || len(rec.Wrapped) != 0 || rec.Erasing.Actor != alice.ID {
			t.Fatalf("key record after erasure: %+v %v %v", rec, ok, err)
		}
		// Once more: harmless.
		if r := call(t, "DELETE", path+"/content", "", alice.bearer()...); r.Status != http.StatusOK {
			t.Fatalf("second erase: %d %s", r.Status, r.Body)
		}
	})
}
