package accounts

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/integr8scode/integr8scode/domain"
)

// Script is a saved script of one user: what they would submit again.
type Script struct {
	ID        string
	Owner     string // user id
	Name      string
	Script    string
	Language  string
	Version   string
	Stdin     string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ScriptStore keeps saved scripts (adapters/mongo implements it). Errors
// carry domain codes (ENOTFOUND).
type ScriptStore interface {
	CreateScript(ctx context.Context, s Script) error
	Script(ctx context.Context, id string) (Script, error)
	UpdateScript(ctx context.Context, s Script) error
	DeleteScript(ctx context.Context, id string) error
	// Scripts lists owner's scripts newest first (by id, a UUIDv7), those
	// with an id below before ("" from the newest).
	Scripts(ctx context.Context, owner, before string, limit int) ([]Script, bool, error)
	// ScriptUsage counts owner's scripts and their bytes (script and stdin).
	ScriptUsage(ctx context.Context, owner string) (count int, bytes int64, err error)
}

const (
	maxScriptName = 200
	// MaxScriptsPerUser and MaxScriptBytesPerUser bound one user's saved
	// scripts: they are primary data nobody rebuilds, on the platform's disk.
	MaxScriptsPerUser     = 500
	MaxScriptBytesPerUser = 16 << 20
	// scriptWritesPerMinute bounds saves and replacements per user.
	scriptWritesPerMinute = 60
)

// ScriptDraft is what a user sends to save or replace a script.
type ScriptDraft struct {
	Name, Script, Language, Version, Stdin string
}

func (d ScriptDraft) validate(c domain.Catalog) (ScriptDraft, error) {
	d.Name = strings.TrimSpace(d.Name)
	switch {
	case d.Name == "" || len([]rune(d.Name)) > maxScriptName:
		return d, domain.Errorf(domain.EUNPROCESSABLE, "name must be 1 to %d characters", maxScriptName)
	case len(d.Script) > domain.MaxScriptBytes:
		return d, domain.Errorf(domain.ETOOLARGE, "script is larger than %d bytes", domain.MaxScriptBytes)
	case len(d.Stdin) > domain.MaxStdinBytes:
		return d, domain.Errorf(domain.ETOOLARGE, "stdin is larger than %d bytes", domain.MaxStdinBytes)
	}
	lang, version, err := c.Resolve(d.Language, d.Version)
	if err != nil {
		return d, err
	}
	d.Language, d.Version = lang, version
	return d, nil
}

// Scripts are the saved-script operations. Every one takes the user it
// acts for; someone else's script is ENOTFOUND (never "forbidden"), so ids
// cannot be probed.
type Scripts struct {
	Store   ScriptStore
	Catalog domain.Catalog
	Now     func() time.Time

	writesOnce sync.Once
	writes     *KeyedLimiter
}

// admitWrite bounds a user's saves and replacements, and what they keep:
// at most MaxScriptsPerUser scripts (when adding one) and
// MaxScriptBytesPerUser bytes with the write's own added (size) and
// replaced (was) bytes accounted.
func (s *Scripts) admitWrite(ctx context.Context, u User, adding bool, size, was int64) error {
	s.writesOnce.Do(func() { s.writes = NewKeyedLimiter(s.Now) })
	if d := s.writes.Take(u.ID, scriptWritesPerMinute, scriptWritesPerMinute/2); d > 0 {
		return domain.RetryLater(d, domain.ETOOMANY, "you saved %d scripts in the last minute, the most allowed; retry shortly", scriptWritesPerMinute)
	}
	n, bytes, err := s.Store.ScriptUsage(ctx, u.ID)
	if err != nil {
		return err
	}
	if adding && n >= MaxScriptsPerUser {
		return domain.Errorf(domain.ECONFLICT, "you have %d saved scripts, the most allowed; delete one first", n)
	}
	if bytes-was+size > MaxScriptBytesPerUser {
		return domain.Errorf(domain.ECONFLICT, "your saved scripts would hold more than %d MiB; delete some first", MaxScriptBytesPerUser>>20)
	}
	return nil
}

func (s *Scripts) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

func errNoScript(id string) error {
	if len(id) > 36 {
		id = id[:36] + "…"
	}
	return domain.Errorf(domain.ENOTFOUND, "script %s not found", id)
}

// Create saves a new script of u.
func (s *Scripts) Create(ctx context.Context, u User, d ScriptDraft) (Script, error) {
	d, err := d.validate(s.Catalog)
	if err != nil {
		return Script{}, err
	}
	if err := s.admitWrite(ctx, u, true, int64(len(d.Script)+len(d.Stdin)), 0); err != nil {
		return Script{}, err
	}
	now := s.now()
	sc := Script{ID: uuid.Must(uuid.NewV7()).String(), Owner: u.ID, Name: d.Name, Script: d.Script,
		Language: d.Language, Version: d.Version, Stdin: d.Stdin, CreatedAt: now, UpdatedAt: now}
	return sc, s.Store.CreateScript(ctx, sc)
}

// Get returns u's script id.
func (s *Scripts) Get(ctx context.Context, u User, id string) (Script, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Script{}, errNoScript(id)
	}
	sc, err := s.Store.Script(ctx, id)
	if err != nil {
		if domain.ErrorCode(err) == domain.ENOTFOUND {
			return Script{}, errNoScript(id)
		}
		return Script{}, err
	}
	if sc.Owner != u.ID {
		return Script{}, errNoScript(id)
	}
	return sc, nil
}

// Replace overwrites u's script id with d.
func (s *Scripts) Replace(ctx context.Context, u User, id string, d ScriptDraft) (Script, error) {
	sc, err := s.Get(ctx, u, id)
	if err != nil {
		return Script{}, err
	}
	if d, err = d.validate(s.Catalog); err != nil {
		return Script{}, err
	}
	if err := s.admitWrite(ctx, u, false, int64(len(d.Script)+len(d.Stdin)), int64(len(sc.Script)+len(sc.Stdin))); err != nil {
		return Script{}, err
	}
	sc.Name, sc.Script, sc.Language, sc.Version, sc.Stdin = d.Name, d.Script, d.Language, d.Version, d.Stdin
	sc.UpdatedAt = s.now()
	return sc, s.Store.UpdateScript(ctx, sc)
}

// Delete removes u's script id.
func (s *Scripts) Delete(ctx context.Context, u User, id string) error {
	if _, err := s.Get(ctx, u, id); err != nil {
		return err
	}
	return s.Store.DeleteScript(ctx, id)
}

// List returns u's scripts newest first, below the id before.
func (s *Scripts) List(ctx context.Context, u User, before string, limit int) ([]Script, bool, error) {
	if before != "" {
		if _, err := uuid.Parse(before); err != nil {
			return nil, false, domain.Errorf(domain.EINVALID, "cursor is malformed")
		}
	}
	return s.Store.Scripts(ctx, u.ID, before, limit)
}
