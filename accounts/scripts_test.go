package accounts_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/integr8scode/integr8scode/accounts"
	"github.com/integr8scode/integr8scode/adapters/mongo"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/internal/testenv"
)

var catalog = domain.Catalog{
	Runtimes: []domain.Runtime{{Language: "python", Versions: []string{"3.11", "3.12"}, DefaultVersion: "3.12", FileExtension: "py"}},
}

func scripts(t *testing.T, c *clock) (*accounts.Scripts, *mongo.Accounts) {
	t.Helper()
	store := mongo.NewAccounts(testenv.Store(t, "scripts_test"))
	return &accounts.Scripts{Store: store, Catalog: catalog, Now: c.Now}, store
}

var (
	ada   = accounts.User{ID: "01938f7a-0000-7000-8000-00000000a0a0", Username: "ada"}
	grace = accounts.User{ID: "01938f7a-0000-7000-8000-00000000b0b0", Username: "grace"}
)

func TestSavedScriptsBelongToTheirOwnerAlone(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s, _ := scripts(t, c)
	sc, err := s.Create(ctx, ada, accounts.ScriptDraft{Name: "  hello  ", Script: "print('hi')", Stdin: "in"})
	if err != nil || sc.Name != "hello" || sc.Language != "python" || sc.Version != "3.12" || sc.Owner != ada.ID || !sc.CreatedAt.Equal(c.Now()) {
		t.Fatalf("created %+v %v", sc, err)
	}
	if got, err := s.Get(ctx, ada, sc.ID); err != nil || got != sc {
		t.Fatalf("get %+v %v", got, err)
	}
	// Someone else's script does not exist for them, whatever they try.
	_, err = s.Get(ctx, grace, sc.ID)
	refused(t, "another's script", err, domain.ENOTFOUND)
	_, err = s.Replace(ctx, grace, sc.ID, accounts.ScriptDraft{Name: "mine now", Script: "x"})
	refused(t, "replacing another's script", err, domain.ENOTFOUND)
	refused(t, "deleting another's script", s.Delete(ctx, grace, sc.ID), domain.ENOTFOUND)
	if list, more, err := s.List(ctx, grace, "", 10); err != nil || len(list) != 0 || more {
		t.Fatalf("another's list %+v %v", list, err)
	}

	c.Add(time.Minute)
	re, err := s.Replace(ctx, ada, sc.ID, accounts.ScriptDraft{Name: "hello", Script: "print('bye')", Version: "3.11"})
	if err != nil || re.Script != "print('bye')" || re.Version != "3.11" || re.Stdin != "" || !re.CreatedAt.Equal(sc.CreatedAt) || !re.UpdatedAt.Equal(c.Now()) {
		t.Fatalf("replaced %+v %v", re, err)
	}
	if got, _ := s.Get(ctx, ada, sc.ID); got != re {
		t.Fatalf("stored %+v", got)
	}
	_, err = s.Replace(ctx, ada, sc.ID, accounts.ScriptDraft{Name: "", Script: "x"})
	refused(t, "a replacement without a name", err, domain.EUNPROCESSABLE)

	second, err := s.Create(ctx, ada, accounts.ScriptDraft{Name: "second", Script: "print(2)"})
	if err != nil {
		t.Fatal(err)
	}
	page, more, err := s.List(ctx, ada, "", 1)
	if err != nil || len(page) != 1 || !more || page[0].ID != second.ID {
		t.Fatalf("newest first: %+v %v %v", page, more, err)
	}
	page, more, err = s.List(ctx, ada, second.ID, 1)
	if err != nil || len(page) != 1 || more || page[0].ID != sc.ID {
		t.Fatalf("below the cursor: %+v %v %v", page, more, err)
	}
	_, _, err = s.List(ctx, ada, "not-a-cursor", 1)
	refused(t, "a malformed cursor", err, domain.EINVALID)

	if err := s.Delete(ctx, ada, sc.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.Get(ctx, ada, sc.ID)
	refused(t, "a deleted script", err, domain.ENOTFOUND)
	// An id that is no UUID is not looked up, and not echoed at length.
	_, err = s.Get(ctx, ada, strings.Repeat("x", 100))
	refused(t, "a malformed id", err, domain.ENOTFOUND)
	if msg := domain.ErrorMessage(err); strings.Contains(msg, strings.Repeat("x", 37)) {
		t.Fatalf("the message echoes the whole id: %q", msg)
	}
}

func TestADraftIsCheckedBeforeItIsSaved(t *testing.T) {
	ctx := context.Background()
	s, store := scripts(t, newClock())
	for what, tc := range map[string]struct {
		d    accounts.ScriptDraft
		code string
	}{
		"no name":           {accounts.ScriptDraft{Name: " ", Script: "x"}, domain.EUNPROCESSABLE},
		"a name too long":   {accounts.ScriptDraft{Name: strings.Repeat("n", 201), Script: "x"}, domain.EUNPROCESSABLE},
		"a script too big":  {accounts.ScriptDraft{Name: "big", Script: strings.Repeat("x", domain.MaxScriptBytes+1)}, domain.ETOOLARGE},
		"stdin too big":     {accounts.ScriptDraft{Name: "big", Stdin: strings.Repeat("x", domain.MaxStdinBytes+1)}, domain.ETOOLARGE},
		"an unknown lang":   {accounts.ScriptDraft{Name: "rb", Script: "puts 1", Language: "ruby"}, domain.EUNPROCESSABLE},
		"an unknown python": {accounts.ScriptDraft{Name: "py2", Script: "print 1", Version: "2.7"}, domain.EUNPROCESSABLE},
	} {
		_, err := s.Create(ctx, ada, tc.d)
		refused(t, what, err, tc.code)
	}
	if n, _, err := store.ScriptUsage(ctx, ada.ID); err != nil || n != 0 {
		t.Fatalf("%d scripts saved from refused drafts: %v", n, err)
	}
	// Without a clock, a script is stamped with the time of day, in UTC.
	s.Now = nil
	before := time.Now()
	sc, err := s.Create(ctx, ada, accounts.ScriptDraft{Name: "now", Script: "x"})
	if err != nil || sc.CreatedAt.Before(before) || sc.CreatedAt.After(time.Now()) || sc.CreatedAt.Location() != time.UTC {
		t.Fatalf("%+v %v", sc, err)
	}
}

func TestSavingScriptsIsBoundedInRateCountAndBytes(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s, store := scripts(t, c)
	draft := accounts.ScriptDraft{Name: "s", Script: "print(1)"}
	// A burst of 30 saves, then one a second (60 a minute).
	for i := range 30 {
		if _, err := s.Create(ctx, ada, draft); err != nil {
			t.Fatalf("save %d: %v", i, err)
		}
	}
	_, err := s.Create(ctx, ada, draft)
	refused(t, "the save after the burst", err, domain.ETOOMANY)
	if d, ok := domain.RetryAfterOf(err); !ok || d != time.Second {
		t.Fatalf("retry after %v %v", d, ok)
	}
	if _, err := s.Create(ctx, grace, draft); err != nil {
		t.Fatalf("another user's save: %v", err)
	}
	c.Add(time.Second)
	if _, err := s.Create(ctx, ada, draft); err != nil {
		t.Fatalf("a second later: %v", err)
	}

	// What a user keeps: written to the store directly, as saved over time.
	for i := 31; i < accounts.MaxScriptsPerUser; i++ {
		if err := store.CreateScript(ctx, accounts.Script{ID: uuid.Must(uuid.NewV7()).String(), Owner: ada.ID, Name: fmt.Sprint(i),
			Script: "x", Language: "python", Version: "3.12", CreatedAt: c.Now(), UpdatedAt: c.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	c.Add(time.Minute)
	_, err = s.Create(ctx, ada, draft)
	refused(t, "a script over the count", err, domain.ECONFLICT)

	// Bytes: 64 scripts of 256 KiB are the 16 MiB a user may keep.
	hopper := accounts.User{ID: "01938f7a-0000-7000-8000-00000000c0c0", Username: "hopper"}
	big := strings.Repeat("x", 256<<10)
	var last accounts.Script
	for i := range accounts.MaxScriptBytesPerUser / len(big) {
		last = accounts.Script{ID: uuid.Must(uuid.NewV7()).String(), Owner: hopper.ID, Name: fmt.Sprint(i),
			Script: big, Language: "python", Version: "3.12", CreatedAt: c.Now(), UpdatedAt: c.Now()}
		if err := store.CreateScript(ctx, last); err != nil {
			t.Fatal(err)
		}
	}
	_, err = s.Create(ctx, hopper, accounts.ScriptDraft{Name: "one byte more", Script: "x"})
	refused(t, "a script over the bytes", err, domain.ECONFLICT)
	// A replacement counts the bytes it frees.
	if _, err := s.Replace(ctx, hopper, last.ID, accounts.ScriptDraft{Name: "same size", Script: strings.Repeat("y", len(big))}); err != nil {
		t.Fatalf("a replacement of the same size at the cap: %v", err)
	}
	_, err = s.Replace(ctx, hopper, last.ID, accounts.ScriptDraft{Name: "bigger", Script: big, Stdin: "x"})
	refused(t, "a replacement that grows past the cap", err, domain.ECONFLICT)
}

func TestScriptsOnAStoreThatIsGoneFailAsAnOutage(t *testing.T) {
	ctx := context.Background()
	db := testenv.Store(t, "scripts_gone")
	if err := db.Database().Client().Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	// No clock: the scripts keep the time of day.
	s := &accounts.Scripts{Store: mongo.NewAccounts(db), Catalog: catalog}
	id := uuid.Must(uuid.NewV7()).String()
	for what, err := range map[string]error{
		"create": func() error { _, err := s.Create(ctx, ada, accounts.ScriptDraft{Name: "s", Script: "x"}); return err }(),
		"get":    func() error { _, err := s.Get(ctx, ada, id); return err }(),
		"list":   func() error { _, _, err := s.List(ctx, ada, "", 10); return err }(),
	} {
		refused(t, what, err, domain.EINTERNAL)
	}
}
