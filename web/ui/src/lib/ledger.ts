// The ledger verified in the browser, without taking the server's word:
// the rules of docs/events.md, mirrored from docs/events/verify_ledger.py
// (and so from eventstore/audit.go). Canonical form with `canonicalize`
// (RFC 8785: members sorted by UTF-16 code units, JSON.stringify's strings
// and ECMAScript numbers, which is what the ledger hashes; the Vitest suite
// holds it to every vector of docs/events/vectors.json), SHA-256 and
// Ed25519 with WebCrypto.

import canonicalize from 'canonicalize';
import { hasRepeatedNames, isObject, type JSONValue } from './json';

export const KNOWN_TYPES = new Set([
  'ExecutionQueued',
  'ExecutionStarted',
  'ExecutionAbandoned',
  'ExecutionResumed',
  'ExecutionCompleted',
  'ExecutionFailed',
  'ExecutionErased',
]);
// The highest schema_version of any type (version 2 seals content).
const MAX_SCHEMA_VERSION = 2;

const STRING_MEMBERS = [
  'event_id',
  'type',
  'execution_id',
  'occurred_at',
  'correlation_id',
  'causation_id',
  'actor',
  'prev_hash',
  'key_id',
  'hash',
  'signature',
] as const;

export type ProblemKind =
  | 'malformed'
  | 'bad_hash'
  | 'bad_signature'
  | 'bad_link'
  | 'gap'
  | 'duplicate'
  | 'fork'
  | 'unknown_schema'
  | 'other_execution';

export interface Problem {
  kind: ProblemKind;
  detail: string;
}

export interface Envelope {
  event_id: string;
  type: string;
  schema_version: number;
  execution_id: string;
  sequence: number;
  occurred_at: string;
  correlation_id: string;
  causation_id: string;
  actor: string;
  prev_hash: string;
  key_id: string;
  hash: string;
  signature: string;
  data: { [name: string]: JSONValue };
}

/** One record as the timeline shows it, with what this browser found. */
export interface CheckedEvent {
  index: number;
  envelope?: Envelope; // absent when the record is malformed
  problems: Problem[];
}

export interface ChainReport {
  events: CheckedEvent[];
  /** Every record authentic, linked and in order from sequence 1, for this execution. */
  ok: boolean;
  /** The problems of the chain as a whole (an empty list, a missing start). */
  problems: Problem[];
}

const enc = new TextEncoder();

export function toHex(bytes: ArrayBuffer | Uint8Array): string {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
}

function fromHex(hex: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Strict base64url without padding (RFC 4648 §5) of exactly `size` bytes, or null. */
export function decodeBase64url(text: string, size: number): Uint8Array<ArrayBuffer> | null {
  if (text.length !== Math.ceil((size * 4) / 3) || !/^[A-Za-z0-9_-]*$/.test(text)) return null;
  const bin = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  const out = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  if (out.length !== size) return null;
  // Reject non-canonical encodings (unused low bits set), as Go's strict decoder does.
  const again = btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  return again === text ? out : null;
}

export async function sha256Hex(text: string): Promise<string> {
  return toHex(await crypto.subtle.digest('SHA-256', enc.encode(text)));
}

/** The canonical form of a record: RFC 8785 of it without hash and signature. */
export function canonicalForm(record: { [name: string]: JSONValue }): string {
  const rest: { [name: string]: JSONValue } = {};
  for (const [name, v] of Object.entries(record)) {
    if (name !== 'hash' && name !== 'signature') rest[name] = v;
  }
  const out = canonicalize(rest);
  if (out === undefined) throw new Error('no canonical form');
  return out;
}

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

export class KeySet {
  private keys = new Map<string, CryptoKey>();
  /** Keys of the document this set refused, and why. */
  readonly refused: string[] = [];

  get size(): number {
    return this.keys.size;
  }

  /** Adds every key of a GET /api/v1/ledger/keys document whose id matches its bytes. */
  static async fromDocument(doc: JSONValue): Promise<KeySet> {
    const set = new KeySet();
    const list = isObject(doc) && Array.isArray(doc.keys) ? doc.keys : [];
    for (const k of list) {
      if (!isObject(k) || typeof k.key_id !== 'string' || typeof k.public_key !== 'string') {
        set.refused.push('a key entry without key_id or public_key');
        continue;
      }
      const why = await set.add(k.key_id, k.public_key, k.alg);
      if (why) set.refused.push(`${k.key_id}: ${why}`);
    }
    return set;
  }

  /** Adds a key; returns why not when it cannot. */
  async add(keyId: string, publicKey: string, alg: JSONValue = 'Ed25519'): Promise<string | null> {
    if (alg !== 'Ed25519') return `algorithm ${String(alg)} is not Ed25519`;
    const raw = decodeBase64url(publicKey, 32);
    if (!raw) return 'public_key is not 32 bytes of base64url';
    // key_id is "ed25519:" + 16 hex digits of the key's SHA-256, so an id
    // can never name another key.
    const want = 'ed25519:' + toHex(await crypto.subtle.digest('SHA-256', raw)).slice(0, 16);
    if (want !== keyId) return `its id does not match its bytes (${want})`;
    try {
      this.keys.set(keyId, await crypto.subtle.importKey('raw', raw, { name: 'Ed25519' }, false, ['verify']));
    } catch (e) {
      return `this browser cannot use Ed25519 keys (${(e as Error).message})`;
    }
    return null;
  }

  /** null when signature is keyId's valid signature of the 32 hash bytes, else why not. */
  async verify(keyId: string, hashHex: string, signature: string): Promise<string | null> {
    const key = this.keys.get(keyId);
    if (!key) return keyId ? `signed with unknown key ${keyId}` : 'no key_id';
    if (!/^[0-9a-f]{64}$/.test(hashHex)) return 'hash is not 64 lowercase hex digits';
    if (!signature) return 'no signature';
    const sig = decodeBase64url(signature, 64);
    if (!sig) return 'signature is not 64 bytes of base64url';
    const ok = await crypto.subtle.verify({ name: 'Ed25519' }, key, sig, fromHex(hashHex));
    return ok ? null : `signature does not verify with key ${keyId}`;
  }
}

// ---------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** The envelope of a record, or why it is not one (malformed). */
export function readEnvelope(record: JSONValue): Envelope | string {
  if (!isObject(record)) return 'not a JSON object';
  if (hasRepeatedNames(record)) return 'a member name is repeated';
  const missing = [...STRING_MEMBERS, 'schema_version', 'sequence', 'data'].filter((m) => !(m in record));
  if (missing.length) return 'missing ' + missing.join(', ');
  for (const m of STRING_MEMBERS) if (typeof record[m] !== 'string') return `${m} is not a string`;
  for (const m of ['schema_version', 'sequence']) {
    if (!Number.isSafeInteger(record[m])) return `${m} is not an integer`;
  }
  for (const m of ['event_id', 'type', 'execution_id']) if (!record[m]) return `${m} is empty`;
  if ((record.sequence as number) < 1) return `sequence ${record.sequence} is not positive`;
  const t = RFC3339.exec(record.occurred_at as string);
  if (!t || Number.isNaN(Date.parse(record.occurred_at as string))) return 'occurred_at is not an RFC 3339 timestamp';
  return record as unknown as Envelope;
}

/** The first failing proof of a record on its own (hash, then signature); null if authentic. */
export async function checkProofs(env: Envelope, keys: KeySet): Promise<Problem | null> {
  let canonical: string;
  try {
    canonical = canonicalForm(env as unknown as { [name: string]: JSONValue });
  } catch (e) {
    return { kind: 'malformed', detail: `canonical form: ${(e as Error).message}` };
  }
  if ((await sha256Hex(canonical)) !== env.hash) {
    return { kind: 'bad_hash', detail: "hash does not match the event's canonical form" };
  }
  const why = await keys.verify(env.key_id, env.hash, env.signature);
  return why ? { kind: 'bad_signature', detail: why } : null;
}

/**
 * verifyChain checks one execution's records in the order served, with the
 * audit's rules: a record that fails its own proofs is reported alone and
 * does not extend the chain; a second event for a recorded sequence is a
 * duplicate or a fork; a skipped sequence is a gap; the link is checked
 * when the previous event is known. On top of the audit, every record must
 * belong to executionId (a server could serve another execution's valid
 * chain), and the chain must start at sequence 1: ok means the whole,
 * unbroken, signed history of this execution up to its last event.
 */
export async function verifyChain(executionId: string, records: JSONValue[], keys: KeySet): Promise<ChainReport> {
  const chain: string[] = []; // hash per sequence - 1, "" = not seen
  const events: CheckedEvent[] = [];
  for (const [index, record] of records.entries()) {
    const env = readEnvelope(record);
    if (typeof env === 'string') {
      events.push({ index, problems: [{ kind: 'malformed', detail: env }] });
      continue;
    }
    const problems: Problem[] = [];
    events.push({ index, envelope: env, problems });
    if (env.execution_id !== executionId) {
      problems.push({ kind: 'other_execution', detail: `the event belongs to execution ${env.execution_id}` });
      continue;
    }
    const proof = await checkProofs(env, keys);
    if (proof) {
      problems.push(proof);
      continue;
    }
    const seq = env.sequence;
    const n = chain.length;
    if (seq <= n && chain[seq - 1]) {
      problems.push(
        chain[seq - 1] === env.hash
          ? { kind: 'duplicate', detail: 'the same event again' }
          : { kind: 'fork', detail: `a different, validly signed event for sequence ${seq}` },
      );
      continue;
    }
    if (seq > n + 1) problems.push({ kind: 'gap', detail: `sequences ${n + 1} to ${seq - 1} are missing` });
    if (seq === 1 || (seq - 2 < n && chain[seq - 2])) {
      const prev = seq > 1 ? chain[seq - 2] : '';
      if (env.prev_hash !== prev) {
        problems.push({
          kind: 'bad_link',
          detail: seq === 1 ? 'prev_hash of sequence 1 is not empty' : `prev_hash does not match the hash of sequence ${seq - 1}`,
        });
        continue;
      }
    }
    if (!KNOWN_TYPES.has(env.type)) problems.push({ kind: 'unknown_schema', detail: `unknown event type ${env.type}` });
    else if (env.schema_version < 1 || env.schema_version > MAX_SCHEMA_VERSION) {
      problems.push({ kind: 'unknown_schema', detail: `unknown schema version ${env.schema_version}` });
    } else if (!isObject(env.data)) problems.push({ kind: 'unknown_schema', detail: 'data is not a JSON object' });
    while (chain.length < seq) chain.push('');
    chain[seq - 1] = env.hash;
  }
  const problems: Problem[] = [];
  if (records.length === 0) problems.push({ kind: 'gap', detail: 'the server listed no events' });
  const missing = chain.findIndex((h) => h === '');
  if (chain.length === 0 && records.length > 0) {
    problems.push({ kind: 'gap', detail: 'no event of the chain verifies' });
  } else if (missing >= 0) {
    problems.push({ kind: 'gap', detail: `sequence ${missing + 1} is missing` });
  }
  // unknown_schema events are authentic and keep their place; they do not
  // make the chain invalid, only unreadable in part.
  const ok = problems.length === 0 && events.every((e) => e.problems.every((p) => p.kind === 'unknown_schema'));
  return { events, ok, problems };
}
