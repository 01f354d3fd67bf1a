// Package accounts holds people: users and their roles, passwords, the
// tokens that prove who a request comes from (access JWTs, rotating refresh
// tokens, personal API tokens), login throttling, per-user quotas and saved
// scripts.
//
// Accounts and saved scripts are primary data: they live in MongoDB (the
// Store port, implemented in adapters/mongo) and nothing rebuilds them. The
// executions ledger stays the only source of truth for executions; an
// execution names its owner by user id and nothing more.
//
// Secrets are stored only as hashes: passwords as argon2id PHC strings,
// refresh and API tokens as SHA-256 of 256 random bits (a fast hash is
// enough for a secret that cannot be guessed; argon2 is for what people
// choose).
//
// Why a package of its own rather than the domain: the domain is the
// execution aggregate and pure; accounts have their own rules (password
// policy, token rotation, throttling) and ports, and both the HTTP API and
// the admin command line use them.
package accounts
