// @vitest-environment node
// The browser's verifier against the published vectors (docs/events/
// vectors.json), then against records made bad on purpose: altered, signed
// by another key, unlinked, forked, out of order. The vectors' key is a
// test key whose seed is published, so this suite can sign its own events
// the way the ledger writer does.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseStrict, type JSONValue } from '../src/lib/json';
import { KeySet, canonicalForm, sha256Hex, verifyChain, decodeBase64url, toHex } from '../src/lib/ledger';

interface Vector {
  name: string;
  record: string;
  canonical: string;
  hash: string;
  signature: string;
}
const doc = JSON.parse(readFileSync(new URL('../../../docs/events/vectors.json', import.meta.url), 'utf8')) as {
  key_seed_hex: string;
  key_id: string;
  public_key: string;
  vectors: Vector[];
};
const keysDoc = { keys: [{ key_id: doc.key_id, alg: 'Ed25519', public_key: doc.public_key }] };

type Obj = { [name: string]: JSONValue };
const rec = (i: number): Obj => parseStrict(doc.vectors[i].record) as Obj;
const EXEC = '0190f0e0-1111-7000-8000-000000000001';

// The writer's side, for the bad cases: sign as the test key does.
async function testSigner(): Promise<CryptoKey> {
  const pkcs8 = new Uint8Array([
    ...[0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20],
    ...doc.key_seed_hex.match(/../g)!.map((h) => parseInt(h, 16)),
  ]);
  return crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, true, ['sign']);
}
function b64url(bytes: ArrayBuffer): string {
  return Buffer.from(bytes).toString('base64url');
}
async function sign(record: Obj, key: CryptoKey): Promise<Obj> {
  const out: Obj = { ...record };
  out.hash = await sha256Hex(canonicalForm(out));
  const raw = Uint8Array.from(Buffer.from(out.hash as string, 'hex'));
  out.signature = b64url(await crypto.subtle.sign({ name: 'Ed25519' }, key, raw));
  return out;
}

describe('published vectors', () => {
  it('the test key derives from its seed and its id from its bytes', async () => {
    const key = await testSigner();
    const jwk = await crypto.subtle.exportKey('jwk', key);
    expect(jwk.x).toBe(doc.public_key);
    const keys = await KeySet.fromDocument(keysDoc);
    expect(keys.refused).toEqual([]);
    expect(keys.size).toBe(1);
  });

  for (const v of doc.vectors) {
    it(`${v.name}: canonical form byte for byte, hash and signature`, async () => {
      const record = parseStrict(v.record) as Obj;
      expect(canonicalForm(record)).toBe(v.canonical);
      expect(await sha256Hex(canonicalForm(record))).toBe(v.hash);
      expect(record.hash).toBe(v.hash);
      const keys = await KeySet.fromDocument(keysDoc);
      expect(await keys.verify(doc.key_id, v.hash, v.signature)).toBeNull();
    });
  }

  it('the linked vectors form a valid chain', async () => {
    const keys = await KeySet.fromDocument(keysDoc);
    const report = await verifyChain(EXEC, [rec(0), rec(1), rec(2)], keys);
    expect(report.problems).toEqual([]);
    expect(report.events.map((e) => e.problems)).toEqual([[], [], []]);
    expect(report.ok).toBe(true);
  });

  it('a record written by another tool verifies alone', async () => {
    const keys = await KeySet.fromDocument(keysDoc);
    const r = rec(5);
    const report = await verifyChain(r.execution_id as string, [r], keys);
    expect(report.ok).toBe(true);
  });
});

describe('bad records', () => {
  const kinds = async (records: JSONValue[], exec = EXEC) => {
    const report = await verifyChain(exec, records, await KeySet.fromDocument(keysDoc));
    return { ok: report.ok, each: report.events.map((e) => e.problems.map((p) => p.kind)), chain: report.problems.map((p) => p.kind) };
  };

  it('every vector with one byte of its data changed is a bad hash', async () => {
    const keys = await KeySet.fromDocument(keysDoc);
    for (const v of doc.vectors) {
      const r = parseStrict(v.record) as Obj;
      r.correlation_id = (r.correlation_id as string) + 'x';
      const report = await verifyChain(r.execution_id as string, [r], keys);
      expect(report.ok, v.name).toBe(false);
      expect(report.events[0].problems.map((p) => p.kind), v.name).toEqual(['bad_hash']);
    }
  });

  it('a tampered script is a bad hash, and the chain after it is broken', async () => {
    const r = rec(0);
    (r.data as Obj).script = 'print("something else")';
    expect(await kinds([r, rec(1), rec(2)])).toEqual({ ok: false, each: [['bad_hash'], ['gap'], []], chain: ['gap'] });
  });

  it('a signature of another event, or a damaged one, is a bad signature', async () => {
    const swapped = rec(0);
    swapped.signature = rec(1).signature;
    const damaged = rec(0);
    damaged.signature = (damaged.signature as string).slice(0, -1) + 'A';
    const short = rec(0);
    short.signature = (short.signature as string).slice(2);
    for (const r of [swapped, damaged, short]) {
      expect(await kinds([r])).toEqual({ ok: false, each: [['bad_signature']], chain: ['gap'] });
    }
  });

  it('a key that is not published, or a key whose id lies, verifies nothing', async () => {
    const other = await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
    const forged = await sign(rec(0), (other as CryptoKeyPair).privateKey);
    expect(await kinds([forged])).toEqual({ ok: false, each: [['bad_signature']], chain: ['gap'] });
    // The forger publishes its key under the real key's id: refused.
    const pub = b64url(await crypto.subtle.exportKey('raw', (other as CryptoKeyPair).publicKey));
    const keys = await KeySet.fromDocument({ keys: [{ key_id: doc.key_id, alg: 'Ed25519', public_key: pub }] });
    expect(keys.size).toBe(0);
    expect(keys.refused[0]).toMatch(/does not match its bytes/);
  });

  it('validly signed events that do not link are bad links', async () => {
    const signer = await testSigner();
    const unlinked = await sign({ ...rec(1), prev_hash: '0'.repeat(64) }, signer);
    expect(await kinds([rec(0), unlinked])).toEqual({ ok: false, each: [[], ['bad_link']], chain: [] });
    const notFirst = await sign({ ...rec(0), prev_hash: rec(2).hash }, signer);
    expect((await kinds([notFirst])).each).toEqual([['bad_link']]);
  });

  it('a second, different signed event for a sequence is a fork; the same one twice a duplicate', async () => {
    const signer = await testSigner();
    const other = await sign({ ...rec(1), actor: 'runner', event_id: '0190f0e0-0000-7000-8000-0000000000ff' }, signer);
    expect(await kinds([rec(0), rec(1), other, rec(2)])).toEqual({ ok: false, each: [[], [], ['fork'], []], chain: [] });
    expect(await kinds([rec(0), rec(0), rec(1)])).toEqual({ ok: false, each: [[], ['duplicate'], []], chain: [] });
  });

  it('a missing middle event is a gap, and so is a chain that does not start at 1', async () => {
    expect(await kinds([rec(0), rec(2)])).toEqual({ ok: false, each: [[], ['gap']], chain: ['gap'] });
    expect(await kinds([rec(1), rec(2)])).toEqual({ ok: false, each: [['gap'], []], chain: ['gap'] });
    expect(await kinds([])).toEqual({ ok: false, each: [], chain: ['gap'] });
  });

  it("another execution's valid events are not this execution's history", async () => {
    const r = rec(5);
    expect(await kinds([r])).toEqual({ ok: false, each: [['other_execution']], chain: ['gap'] });
  });

  it('repeated member names, missing members and wrong types are malformed', async () => {
    const repeated = doc.vectors[0].record.replace('"actor":"anonymous"', '"actor":"anonymous","actor":"admin"');
    const parsed = parseStrict(repeated, { markRepeated: true });
    expect(() => parseStrict(repeated)).toThrow(/repeated member name/);
    const noSeq = rec(0);
    delete noSeq.sequence;
    const strSeq = { ...rec(0), sequence: '1' };
    const badTime = { ...rec(0), occurred_at: 'yesterday' };
    for (const r of [parsed, noSeq, strSeq, badTime, 'text', null]) {
      expect((await kinds([r])).each).toEqual([['malformed']]);
    }
  });

  it('an authentic event of a type this browser does not know keeps its place', async () => {
    const signer = await testSigner();
    const future = await sign({ ...rec(1), type: 'ExecutionPaused' }, signer);
    const third = await sign({ ...rec(2), prev_hash: future.hash }, signer);
    const r = await kinds([rec(0), future, third]);
    expect(r.each).toEqual([[], ['unknown_schema'], []]);
    expect(r.ok).toBe(true);
  });

  it('knows the sealed version 2 and ExecutionErased', async () => {
    const signer = await testSigner();
    const v2 = await sign({ ...rec(1), schema_version: 2 }, signer);
    const erased = await sign({ ...rec(2), prev_hash: v2.hash, type: 'ExecutionErased', schema_version: 1, data: { reason: 'request' } }, signer);
    const r = await kinds([rec(0), v2, erased]);
    expect(r.each).toEqual([[], [], []]);
    expect(r.ok).toBe(true);
  });
});

describe('strict JSON and base64url', () => {
  it('refuses lone surrogates and trailing text, keeps __proto__ a member', () => {
    expect(() => parseStrict('"\\ud800"')).toThrow(/surrogate/);
    expect(() => parseStrict('{} x')).toThrow();
    const o = parseStrict('{"__proto__":{"polluted":1}}') as Obj;
    expect(Object.keys(o)).toEqual(['__proto__']);
    expect(({} as Obj).polluted).toBeUndefined();
    expect(parseStrict('[1e+30, -0, 0.5, "\\u00e9\\/"]')).toEqual([1e30, -0, 0.5, 'é/']);
  });

  it('decodes only canonical, unpadded base64url of the right size', () => {
    expect(toHex(decodeBase64url(doc.public_key, 32)!)).toHaveLength(64);
    expect(decodeBase64url(doc.public_key + '=', 32)).toBeNull();
    expect(decodeBase64url(doc.public_key.replace(/-/g, '+'), 32)).toBeNull();
    // The last character carries 4 unused bits; setting them is another text for the same bytes.
    const last = doc.public_key.at(-1)!;
    const alias = doc.public_key.slice(0, -1) + String.fromCharCode(last.charCodeAt(0) + 1);
    expect(decodeBase64url(alias, 32)).toBeNull();
  });
});
