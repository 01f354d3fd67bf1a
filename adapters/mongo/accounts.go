package mongo

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/integr8scode/integr8scode/accounts"
	"github.com/integr8scode/integr8scode/domain"
)

// Accounts and saved scripts are primary data: unlike the read models,
// nothing rebuilds them, so back them up with the database (docs/security.md).
//
// Every uniqueness rule is an insert that fails on a duplicate _id, atomic
// across processes on MongoDB and on FerretDB alike: a username is taken by
// inserting usernames/{key}; a refresh token is spent by inserting
// refresh_used/{hash}; a sign-in ends by inserting revoked_sign_ins/{family}.
// Other reads are by _id, except the per-user lists (API tokens, scripts)
// and the admin's user list, which MongoDB answers from the indexes below
// and FerretDB 1.x by scanning the (small) collection.
const (
	CollUsers          = "users"
	CollUsernames      = "usernames"
	CollRefreshTokens  = "refresh_tokens"
	CollRefreshUsed    = "refresh_used"
	CollRevokedSignIns = "revoked_sign_ins"
	CollAPITokens      = "api_tokens"
	CollLoginFailures  = "login_failures"
	CollScripts        = "scripts"
)

// AccountCollections lists the collections of accounts and saved scripts.
func AccountCollections() []string {
	return []string{CollUsers, CollUsernames, CollRefreshTokens, CollRefreshUsed, CollRevokedSignIns,
		CollAPITokens, CollLoginFailures, CollScripts}
}

func accountIndexes() map[string][]mongo.IndexModel {
	asc, desc := 1, -1
	ttl := func(field string) mongo.IndexModel {
		// MongoDB deletes expired sign-in records itself (FerretDB 1.x has
		// no TTL indexes; there they stay, harmless, read only by _id).
		return mongo.IndexModel{Keys: bson.D{{Key: field, Value: asc}},
			Options: options.Index().SetName(field + "_ttl").SetExpireAfterSeconds(0)}
	}
	return map[string][]mongo.IndexModel{
		CollAPITokens: {{Keys: bson.D{{Key: "user_id", Value: asc}, {Key: "id", Value: desc}},
			Options: options.Index().SetName("user_id")}},
		CollScripts: {{Keys: bson.D{{Key: "owner", Value: asc}, {Key: "_id", Value: desc}},
			Options: options.Index().SetName("owner_id_desc")}},
		CollRefreshTokens: {ttl("expires_at_date")},
		CollRefreshUsed:   {ttl("expires_at_date")},
	}
}

// Accounts implements accounts.Store and accounts.ScriptStore.
type Accounts struct {
	users, usernames, refresh, used, revoked, tokens, failures, scripts *mongo.Collection
}

// NewAccounts returns the account store of db.
func NewAccounts(db *DB) *Accounts {
	c := db.db.Collection
	return &Accounts{users: c(CollUsers), usernames: c(CollUsernames), refresh: c(CollRefreshTokens),
		used: c(CollRefreshUsed), revoked: c(CollRevokedSignIns), tokens: c(CollAPITokens),
		failures: c(CollLoginFailures), scripts: c(CollScripts)}
}

var (
	_ accounts.Store       = (*Accounts)(nil)
	_ accounts.ScriptStore = (*Accounts)(nil)
)

// Documents. They are this adapter's own shapes, apart from the account
// types, so that storage names never leak into the API or the rules.

type quotaDoc struct {
	PerMinute  int `bson:"per_minute"`
	Burst      int `bson:"burst"`
	Concurrent int `bson:"concurrent"`
}

type userDoc struct {
	ID           string    `bson:"_id"`
	Username     string    `bson:"username"`
	Role         string    `bson:"role"`
	Disabled     bool      `bson:"disabled"`
	Quota        *quotaDoc `bson:"quota,omitempty"`
	PasswordHash string    `bson:"password_hash"`
	CreatedAt    time.Time `bson:"created_at"`
	UpdatedAt    time.Time `bson:"updated_at"`
}

func toUserDoc(u accounts.User) userDoc {
	d := userDoc{ID: u.ID, Username: u.Username, Role: string(u.Role), Disabled: u.Disabled,
		PasswordHash: u.PasswordHash, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
	if u.Quota != nil {
		d.Quota = &quotaDoc{PerMinute: u.Quota.PerMinute, Burst: u.Quota.Burst, Concurrent: u.Quota.Concurrent}
	}
	return d
}

func (d userDoc) user() accounts.User {
	u := accounts.User{ID: d.ID, Username: d.Username, Role: accounts.Role(d.Role), Disabled: d.Disabled,
		PasswordHash: d.PasswordHash, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
	if d.Quota != nil {
		u.Quota = &accounts.Quota{PerMinute: d.Quota.PerMinute, Burst: d.Quota.Burst, Concurrent: d.Quota.Concurrent}
	}
	return u
}

type usernameDoc struct {
	ID     string `bson:"_id"` // accounts.UsernameKey
	UserID string `bson:"user_id"`
}

func byID(id string) bson.D { return bson.D{{Key: "_id", Value: id}} }

// CreateUser takes the username first: of two processes registering the
// same name, exactly one insert succeeds.
func (a *Accounts) CreateUser(ctx context.Context, u accounts.User) error {
	key := accounts.UsernameKey(u.Username)
	if _, err := a.usernames.InsertOne(ctx, usernameDoc{ID: key, UserID: u.ID}); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return domain.Errorf(domain.ECONFLICT, "username %s is taken", u.Username)
		}
		return fmt.Errorf("create user: %w", err)
	}
	if _, err := a.users.InsertOne(ctx, toUserDoc(u)); err != nil {
		// Give the name back, so a retry can have it.
		_, _ = a.usernames.DeleteOne(context.WithoutCancel(ctx), byID(key))
		return fmt.Errorf("create user: %w", err)
	}
	return nil
}

func (a *Accounts) User(ctx context.Context, id string) (accounts.User, error) {
	d, ok, err := findByID[userDoc](ctx, a.users, id)
	if err != nil {
		return accounts.User{}, fmt.Errorf("user %s: %w", id, err)
	}
	if !ok {
		return accounts.User{}, domain.Errorf(domain.ENOTFOUND, "user %s not found", id)
	}
	return d.user(), nil
}

func (a *Accounts) UserByName(ctx context.Context, key string) (accounts.User, error) {
	n, ok, err := findByID[usernameDoc](ctx, a.usernames, key)
	if err != nil {
		return accounts.User{}, fmt.Errorf("username: %w", err)
	}
	if !ok {
		return accounts.User{}, domain.Errorf(domain.ENOTFOUND, "no such user")
	}
	return a.User(ctx, n.UserID)
}

func (a *Accounts) UpdateUser(ctx context.Context, u accounts.User) error {
	res, err := a.users.ReplaceOne(ctx, byID(u.ID), toUserDoc(u))
	if err != nil {
		return fmt.Errorf("update user %s: %w", u.ID, err)
	}
	if res.MatchedCount == 0 {
		return domain.Errorf(domain.ENOTFOUND, "user %s not found", u.ID)
	}
	return nil
}

// SetPasswordHash sets two fields only. (On FerretDB 1.x an update is
// still "read, then write the document", so a concurrent change can be
// lost there in the moment between; on MongoDB it cannot.)
func (a *Accounts) SetPasswordHash(ctx context.Context, id, hash string, at time.Time) error {
	res, err := a.users.UpdateOne(ctx, byID(id), bson.D{{Key: "$set", Value: bson.D{
		{Key: "password_hash", Value: hash}, {Key: "updated_at", Value: at}}}})
	if err != nil {
		return fmt.Errorf("set password of %s: %w", id, err)
	}
	if res.MatchedCount == 0 {
		return domain.Errorf(domain.ENOTFOUND, "user %s not found", id)
	}
	return nil
}

// Users pages by _id, a UUIDv7: oldest first.
func (a *Accounts) Users(ctx context.Context, after string, limit int) ([]accounts.User, bool, error) {
	filter := bson.D{}
	if after != "" {
		filter = bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}}}
	}
	opts := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit) + 1)
	docs, err := findAll[userDoc](ctx, a.users, filter, opts)
	if err != nil {
		return nil, false, fmt.Errorf("list users: %w", err)
	}
	more := len(docs) > limit
	if more {
		docs = docs[:limit]
	}
	out := make([]accounts.User, len(docs))
	for i, d := range docs {
		out[i] = d.user()
	}
	return out, more, nil
}

type refreshDoc struct {
	ID        string    `bson:"_id"` // hash of the secret
	Family    string    `bson:"family"`
	UserID    string    `bson:"user_id"`
	ExpiresAt time.Time `bson:"expires_at"`
	CreatedAt time.Time `bson:"created_at"`
	// ExpiresAtDate is expires_at as a BSON date, for MongoDB's TTL index
	// (times are otherwise stored as strings, timecodec.go).
	ExpiresAtDate bson.DateTime `bson:"expires_at_date"`
}

func (a *Accounts) CreateRefresh(ctx context.Context, t accounts.RefreshToken) error {
	_, err := a.refresh.InsertOne(ctx, refreshDoc{ID: t.Hash, Family: t.Family, UserID: t.UserID,
		ExpiresAt: t.ExpiresAt, CreatedAt: t.CreatedAt, ExpiresAtDate: bson.NewDateTimeFromTime(t.ExpiresAt)})
	if err != nil {
		return fmt.Errorf("store refresh token: %w", err)
	}
	return nil
}

func (a *Accounts) Refresh(ctx context.Context, hash string) (accounts.RefreshToken, error) {
	d, ok, err := findByID[refreshDoc](ctx, a.refresh, hash)
	if err != nil {
		return accounts.RefreshToken{}, fmt.Errorf("refresh token: %w", err)
	}
	if !ok {
		return accounts.RefreshToken{}, domain.Errorf(domain.ENOTFOUND, "no such refresh token")
	}
	return accounts.RefreshToken{Hash: d.ID, Family: d.Family, UserID: d.UserID, ExpiresAt: d.ExpiresAt, CreatedAt: d.CreatedAt}, nil
}

type usedDoc struct {
	ID            string        `bson:"_id"`
	At            time.Time     `bson:"at"`
	ExpiresAtDate bson.DateTime `bson:"expires_at_date"`
}

// UseRefresh spends a token by inserting its mark: a second insert of the
// same hash fails, in whichever process it happens.
func (a *Accounts) UseRefresh(ctx context.Context, hash string, at time.Time) (bool, error) {
	// The mark outlives the token by a sign-in's longest life, so a reuse
	// is recognised for as long as the token could be presented.
	keep := bson.NewDateTimeFromTime(at.Add(31 * 24 * time.Hour))
	_, err := a.used.InsertOne(ctx, usedDoc{ID: hash, At: at, ExpiresAtDate: keep})
	if mongo.IsDuplicateKeyError(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("spend refresh token: %w", err)
	}
	return true, nil
}

type revokedDoc struct {
	ID string    `bson:"_id"` // the family
	At time.Time `bson:"at"`
}

func (a *Accounts) RevokeFamily(ctx context.Context, family string, at time.Time) error {
	_, err := a.revoked.InsertOne(ctx, revokedDoc{ID: family, At: at})
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("revoke sign-in: %w", err)
	}
	return nil
}

func (a *Accounts) FamilyRevoked(ctx context.Context, family string) (bool, error) {
	_, ok, err := findByID[revokedDoc](ctx, a.revoked, family, idOnly)
	if err != nil {
		return false, fmt.Errorf("sign-in state: %w", err)
	}
	return ok, nil
}

type apiTokenDoc struct {
	Hash      string     `bson:"_id"`
	ID        string     `bson:"id"`
	UserID    string     `bson:"user_id"`
	Name      string     `bson:"name"`
	CreatedAt time.Time  `bson:"created_at"`
	ExpiresAt *time.Time `bson:"expires_at,omitempty"`
	Session   string     `bson:"session"`
}

func (d apiTokenDoc) token() accounts.APIToken {
	return accounts.APIToken{ID: d.ID, Hash: d.Hash, UserID: d.UserID, Name: d.Name, CreatedAt: d.CreatedAt,
		ExpiresAt: d.ExpiresAt, Session: d.Session}
}

func (a *Accounts) CreateAPIToken(ctx context.Context, t accounts.APIToken) error {
	_, err := a.tokens.InsertOne(ctx, apiTokenDoc{Hash: t.Hash, ID: t.ID, UserID: t.UserID, Name: t.Name,
		CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, Session: t.Session})
	if err != nil {
		return fmt.Errorf("store API token: %w", err)
	}
	return nil
}

func (a *Accounts) APIToken(ctx context.Context, hash string) (accounts.APIToken, error) {
	d, ok, err := findByID[apiTokenDoc](ctx, a.tokens, hash)
	if err != nil {
		return accounts.APIToken{}, fmt.Errorf("API token: %w", err)
	}
	if !ok {
		return accounts.APIToken{}, domain.Errorf(domain.ENOTFOUND, "no such token")
	}
	return d.token(), nil
}

func (a *Accounts) APITokens(ctx context.Context, userID string) ([]accounts.APIToken, error) {
	opts := options.Find().SetSort(bson.D{{Key: "id", Value: -1}})
	docs, err := findAll[apiTokenDoc](ctx, a.tokens, bson.D{{Key: "user_id", Value: userID}}, opts)
	if err != nil {
		return nil, fmt.Errorf("list API tokens: %w", err)
	}
	out := make([]accounts.APIToken, len(docs))
	for i, d := range docs {
		out[i] = d.token()
	}
	return out, nil
}

// DeleteAPIToken finds the token among the user's own, so one user can
// never name another's token, and deletes it by _id.
func (a *Accounts) DeleteAPIToken(ctx context.Context, userID, id string) error {
	have, err := a.APITokens(ctx, userID)
	if err != nil {
		return err
	}
	for _, t := range have {
		if t.ID == id {
			if _, err := a.tokens.DeleteOne(ctx, byID(t.Hash)); err != nil {
				return fmt.Errorf("revoke API token: %w", err)
			}
			return nil
		}
	}
	return domain.Errorf(domain.ENOTFOUND, "token %.36s not found", id)
}

// DeleteAPITokensOfSession deletes, by _id, the user's tokens made in a
// sign-in.
func (a *Accounts) DeleteAPITokensOfSession(ctx context.Context, userID, session string) error {
	have, err := a.APITokens(ctx, userID)
	if err != nil {
		return err
	}
	for _, t := range have {
		if t.Session == session && session != "" {
			if _, err := a.tokens.DeleteOne(ctx, byID(t.Hash)); err != nil {
				return fmt.Errorf("revoke API token: %w", err)
			}
		}
	}
	return nil
}

type failuresDoc struct {
	ID    string    `bson:"_id"`
	Count int       `bson:"count"`
	Last  time.Time `bson:"last"`
}

func (a *Accounts) LoginFailures(ctx context.Context, key string) (accounts.Failures, error) {
	d, _, err := findByID[failuresDoc](ctx, a.failures, key)
	if err != nil {
		return accounts.Failures{}, fmt.Errorf("login failures: %w", err)
	}
	return accounts.Failures{Count: d.Count, Last: d.Last}, nil
}

// SaveLoginFailures overwrites the count (a zero count deletes it). Two
// failures at the same moment in two processes may count once: the
// per-address limit bounds guessing all the same.
func (a *Accounts) SaveLoginFailures(ctx context.Context, key string, f accounts.Failures) error {
	var err error
	if f.Count == 0 {
		_, err = a.failures.DeleteOne(ctx, byID(key))
	} else {
		err = replaceByID(ctx, a.failures, key, failuresDoc{ID: key, Count: f.Count, Last: f.Last})
	}
	if err != nil {
		return fmt.Errorf("login failures: %w", err)
	}
	return nil
}

type scriptDoc struct {
	ID        string    `bson:"_id"`
	Owner     string    `bson:"owner"`
	Name      string    `bson:"name"`
	Script    string    `bson:"script"`
	Language  string    `bson:"language"`
	Version   string    `bson:"version"`
	Stdin     string    `bson:"stdin"`
	CreatedAt time.Time `bson:"created_at"`
	UpdatedAt time.Time `bson:"updated_at"`
	Size      int64     `bson:"size"` // bytes of script and stdin, for ScriptUsage
}

func toScriptDoc(s accounts.Script) scriptDoc {
	return scriptDoc{ID: s.ID, Owner: s.Owner, Name: s.Name, Script: s.Script, Language: s.Language,
		Version: s.Version, Stdin: s.Stdin, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
		Size: int64(len(s.Script) + len(s.Stdin))}
}

func (d scriptDoc) script() accounts.Script {
	return accounts.Script{ID: d.ID, Owner: d.Owner, Name: d.Name, Script: d.Script, Language: d.Language,
		Version: d.Version, Stdin: d.Stdin, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
}

func (a *Accounts) CreateScript(ctx context.Context, s accounts.Script) error {
	if _, err := a.scripts.InsertOne(ctx, toScriptDoc(s)); err != nil {
		return fmt.Errorf("save script: %w", err)
	}
	return nil
}

func (a *Accounts) Script(ctx context.Context, id string) (accounts.Script, error) {
	d, ok, err := findByID[scriptDoc](ctx, a.scripts, id)
	if err != nil {
		return accounts.Script{}, fmt.Errorf("script: %w", err)
	}
	if !ok {
		return accounts.Script{}, domain.Errorf(domain.ENOTFOUND, "script %s not found", id)
	}
	return d.script(), nil
}

func (a *Accounts) UpdateScript(ctx context.Context, s accounts.Script) error {
	res, err := a.scripts.ReplaceOne(ctx, byID(s.ID), toScriptDoc(s))
	if err != nil {
		return fmt.Errorf("save script: %w", err)
	}
	if res.MatchedCount == 0 {
		return domain.Errorf(domain.ENOTFOUND, "script %s not found", s.ID)
	}
	return nil
}

func (a *Accounts) DeleteScript(ctx context.Context, id string) error {
	if _, err := a.scripts.DeleteOne(ctx, byID(id)); err != nil {
		return fmt.Errorf("delete script: %w", err)
	}
	return nil
}

func (a *Accounts) Scripts(ctx context.Context, owner, before string, limit int) ([]accounts.Script, bool, error) {
	filter := bson.D{{Key: "owner", Value: owner}}
	if before != "" {
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$lt", Value: before}}})
	}
	opts := options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}).SetLimit(int64(limit) + 1)
	docs, err := findAll[scriptDoc](ctx, a.scripts, filter, opts)
	if err != nil {
		return nil, false, fmt.Errorf("list scripts: %w", err)
	}
	more := len(docs) > limit
	if more {
		docs = docs[:limit]
	}
	out := make([]accounts.Script, len(docs))
	for i, d := range docs {
		out[i] = d.script()
	}
	return out, more, nil
}

func (a *Accounts) ScriptUsage(ctx context.Context, owner string) (int, int64, error) {
	docs, err := findAll[struct {
		Size int64 `bson:"size"`
	}](ctx, a.scripts, bson.D{{Key: "owner", Value: owner}}, options.Find().SetProjection(bson.D{{Key: "size", Value: 1}}))
	if err != nil {
		return 0, 0, fmt.Errorf("scripts' usage: %w", err)
	}
	var bytes int64
	for _, d := range docs {
		bytes += d.Size
	}
	return len(docs), bytes, nil
}

// findAll runs a query and decodes every result.
func findAll[T any](ctx context.Context, coll *mongo.Collection, filter bson.D, opts ...options.Lister[options.FindOptions]) ([]T, error) {
	cur, err := coll.Find(ctx, filter, opts...)
	if err != nil {
		return nil, err
	}
	var out []T
	if err := cur.All(ctx, &out); err != nil {
		return nil, err
	}
	if out == nil {
		out = []T{}
	}
	return out, nil
}
