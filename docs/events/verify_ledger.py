#!/usr/bin/env python3
"""Verify an Integr8sCode event ledger offline, with the Python standard library only.

This script lets an auditor check the ledger without trusting the server that
wrote it and without installing anything: no third-party package, no network
access unless the public keys are fetched from a URL. It needs Python 3.9 or
later (the platform ships 3.11).

The ledger format
-----------------
A ledger *record* is a JSON object, one Kafka message value, with the members

    event_id, type, schema_version, execution_id, sequence, occurred_at,
    correlation_id, causation_id, actor, prev_hash, key_id, data, hash, signature

* The *canonical form* of a record is the JSON Canonicalization Scheme
  (JCS, RFC 8785) of the record object with its top-level members "hash" and
  "signature" removed: members sorted by the UTF-16 code units of their names,
  no whitespace, strings with only the mandatory escapes, numbers in
  ECMAScript Number.prototype.toString form, literals true/false/null.
  Input must be I-JSON (RFC 7493): no duplicate member names, every number an
  IEEE 754 double (JCS treats all numbers as doubles, so 2^53+1 hashes as
  2^53), every string valid Unicode.
* hash = lowercase hex SHA-256 of the canonical form's UTF-8 bytes.
* prev_hash = the hash of the previous event of the same execution, "" for
  sequence 1. Sequences count 1, 2, 3 ... per execution, without gaps.
* signature = Ed25519 (RFC 8032, pure Ed25519) over the 32 raw bytes of the
  hash (not the hex string), base64url without padding.
* key_id = "ed25519:" + the first 16 hex digits of the SHA-256 of the 32-byte
  public key, so an id can never name two keys.

Public keys come as the JSON that GET /api/v1/ledger/keys serves:

    {"keys": [{"key_id": "ed25519:...", "alg": "Ed25519",
               "public_key": "<base64url, no padding, 32 bytes>"}]}

The script refuses a key whose key_id does not match its bytes.

Commands
--------
    verify_ledger.py vectors docs/events/vectors.json
        Check this script against the published test vectors (written by the
        Go test TestCanonicalFormVectors): canonical form byte for byte, hash,
        signature, and that the test key derives from its published seed.

    verify_ledger.py export FILE --keys FILE_OR_URL [--keys ...] [--json]
        Audit an export. FILE holds JSON lines ("-" reads stdin); each line is
        a record object, or {"partition": P, "offset": O, "record": R} where R
        is the record object or the record's text as a JSON string (so that a
        Kafka value that is not JSON can be exported too). Blank lines are
        skipped. Lines are read in file order, which must be log order within
        each partition.

--keys is required for `export`: without the public keys an audit proves
nothing about who wrote the events (anyone who can write to the log can
recompute hashes), so checking only the chain is not offered. Give --keys once
per source (a file, or an http(s) URL such as
https://HOST/api/v1/ledger/keys); the keys are merged. A URL only tells you
what the server says *today*: for an independent audit, verify against a copy
of the keys obtained and archived out of band, and compare the key ids.

Problems reported (the same kinds and rules as eventstore/audit.go, Audit.Add)
-------------------------------------------------------------------------------
    duplicate       the same event (same hash) again for a sequence already recorded
    fork            a different, validly signed event for a sequence already
                    recorded: the signing key signed two events for one sequence
    gap             sequences skipped ("sequences N to M are missing")
    bad_hash        hash does not match the canonical form
    bad_link        prev_hash is not the hash of the previous event
    bad_signature   unknown key_id, missing or invalid signature
    unknown_schema  type not in --known-types, or schema_version not an integer
                    from 1 to --max-schema-version, or data not an object
    malformed       not JSON, not I-JSON (e.g. a repeated member name at any
                    depth), not an object, an envelope member (hash and
                    signature included) missing or of the wrong JSON type

Each record is checked in this order; "alone" means nothing else is reported
for it and it does not extend its execution's chain:

 1. malformed: the record cannot be read (nor canonicalized). Alone.
 2. Its own proofs, with its own prev_hash (the link is not judged yet):
    bad_hash, else bad_signature. Alone: an altered or unsigned record proves
    nothing about the chain, so it is never a duplicate, fork or gap.
 3. The execution already has an event at this sequence: duplicate (same
    hash) or fork (different hash). Alone.
 4. gap if the sequence is beyond the next expected one; checking continues.
 5. The link, only when the previous event is known (sequence 1: prev_hash
    must be ""; else the event at sequence-1 was recorded): bad_link, after
    the gap if any; the record does not extend the chain, so the genuine
    event for that sequence may still follow.
 6. unknown_schema if this audit cannot read the type or version; the record
    is authentic, so it still takes its place in the chain.
 7. The record's hash is recorded at its sequence. Skipped sequences stay
    unrecorded: an event that arrives late for one is checked like any other,
    not called a fork.

"executions" counts the distinct execution ids of the records that could be
read, whatever their problems.

Go's reader (eventstore.ParseRecord) also demands every envelope member by
its exact name and rejects repeated member names. This reader is stricter
where Go's encoding/json is still lenient: it reports as malformed null
where a string is expected (Go reads ""), and it reads only the exactly
named member (Go also maps a differently cased extra member such as "Type"
onto the field). It does not check the fields of each payload ("data" must
be a JSON object); the Go reader also decodes the payload into its Go type.
JSON nested deeper than Python's recursion limit (about 900 levels) is
reported as malformed.

Output and exit status
----------------------
Without --json: a summary line per problem kind, then each problem with its
location (partition:offset, or the line number) and detail. With --json:

    {"events": N, "executions": M, "duplicates": ..., "forks": ...,
     "gaps": ..., "bad_hashes": ..., "bad_links": ..., "bad_signatures": ...,
     "unknown_schemas": ..., "malformed": ...,
     "problems": [{"kind", "partition", "offset", "line", "execution_id",
                   "sequence", "detail"}]}

partition and offset are null for a record exported without them;
execution_id and sequence are null when the record could not be read.
Exit status: 0 no problem, 1 at least one problem (or failed vector),
2 usage or input error (bad arguments, unreadable file, invalid keys).

References: RFC 8785 (JCS), RFC 7493 (I-JSON), RFC 8032 (EdDSA; verification
per sections 5.1.7 and 6), RFC 4648 section 5 (base64url), ECMA-262
Number::toString.
"""

from __future__ import annotations

import argparse
import base64
import calendar
import hashlib
import json
import math
import re
import sys
import urllib.request
from dataclasses import dataclass, field
from typing import IO, Any, Iterator, Optional

# ---------------------------------------------------------------------------
# Strict JSON reading (I-JSON, RFC 7493)
# ---------------------------------------------------------------------------


class JSONError(ValueError):
    """The text is not I-JSON."""


class Number:
    """A JSON number: its literal text and its IEEE 754 double value.

    The text decides whether an envelope member such as "sequence" is an
    integer literal; the canonical form uses the double only.
    """

    __slots__ = ("text", "value")

    def __init__(self, text: str) -> None:
        self.text = text
        self.value = float(text)  # correctly rounded to the nearest double
        if not math.isfinite(self.value):
            raise JSONError(f"number {_clip(text)} is out of range for an IEEE 754 double")

    def __repr__(self) -> str:
        return f"Number({self.text})"


_INTEGER_LITERAL = re.compile(r"-?(?:0|[1-9][0-9]*)\Z")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _clip(text: str, limit: int = 32) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for name, value in pairs:
        if name in obj:
            raise JSONError(f"duplicate member name {_clip(name)}")
        obj[name] = value
    return obj


def _reject_constant(name: str) -> Any:
    raise JSONError(f"{name} is not JSON")


def _check_unicode(value: Any) -> None:
    """Reject lone surrogates (\\ud800 escapes that do not form a pair)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if _SURROGATE.search(v):
                raise JSONError("a string holds a lone UTF-16 surrogate")
        elif isinstance(v, dict):
            for name, member in v.items():
                if _SURROGATE.search(name):
                    raise JSONError("a member name holds a lone UTF-16 surrogate")
                stack.append(member)
        elif isinstance(v, list):
            stack.extend(v)


def parse_json(text: str | bytes) -> Any:
    """Parse I-JSON: UTF-8, no duplicate names, finite doubles, valid Unicode."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise JSONError(f"not UTF-8: {e.reason} at byte {e.start}") from None
    try:
        value = json.loads(text, parse_int=Number, parse_float=Number,
                           parse_constant=_reject_constant,
                           object_pairs_hook=_object_without_duplicates)
    except RecursionError:
        raise JSONError("nested too deeply") from None
    except JSONError:
        raise
    except ValueError as e:  # json.JSONDecodeError and friends
        raise JSONError(str(e)) from None
    _check_unicode(value)
    return value


# ---------------------------------------------------------------------------
# JSON Canonicalization Scheme (RFC 8785)
# ---------------------------------------------------------------------------


class CanonicalError(ValueError):
    """The value has no canonical form."""


_STRING_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f",
                   "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_MUST_ESCAPE = re.compile('["\\\\\x00-\x1f]')


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    return _STRING_ESCAPES.get(ch) or f"\\u{ord(ch):04x}"


def canonical_string(s: str) -> str:
    """RFC 8785 3.2.2.2: only the mandatory escapes, all else literal."""
    if _SURROGATE.search(s):
        raise CanonicalError("a string holds a lone UTF-16 surrogate")
    return '"' + _MUST_ESCAPE.sub(_escape, s) + '"'


def canonical_number(x: float) -> str:
    """RFC 8785 3.2.2.3: ECMAScript Number.prototype.toString of a double.

    repr() gives the shortest digit string that round-trips (the closest one
    when several are as short), which is what ECMA-262 Number::toString asks
    for; only the layout differs.
    """
    if not math.isfinite(x):
        raise CanonicalError(f"{x!r} is not a JSON number")
    if x == 0:
        return "0"  # also -0
    sign = "-" if x < 0 else ""
    mantissa, _, exp = repr(abs(x)).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = whole + frac
    point = len(whole) + (int(exp) if exp else 0)  # value = 0.<digits> * 10**point
    significant = digits.lstrip("0")
    point -= len(digits) - len(significant)
    digits = significant.rstrip("0")
    k, n = len(digits), point  # ECMA-262: k digits, value = digits * 10**(n-k)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    e = n - 1
    exponent = ("e+" if e > 0 else "e-") + str(abs(e))
    return sign + digits[0] + ("." + digits[1:] if k > 1 else "") + exponent


def _utf16_key(name: str) -> bytes:
    # Big-endian UTF-16 bytes compare exactly like the code unit sequence.
    return name.encode("utf-16-be", "surrogatepass")


def canonical_json(value: Any) -> str:
    """Serialize a value parsed by parse_json in the JCS canonical form."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, Number):
        return canonical_number(value.value)
    if isinstance(value, float):
        return canonical_number(value)
    if isinstance(value, int):
        return canonical_number(float(value))
    if isinstance(value, str):
        return canonical_string(value)
    if isinstance(value, list):
        return "[" + ",".join(canonical_json(v) for v in value) + "]"
    if isinstance(value, dict):
        members = sorted(value.items(), key=lambda m: _utf16_key(m[0]))
        return "{" + ",".join(canonical_string(k) + ":" + canonical_json(v) for k, v in members) + "}"
    raise CanonicalError(f"cannot canonicalize a {type(value).__name__}")


def canonical_form(record: dict[str, Any]) -> bytes:
    """The bytes an event's hash covers: the record without hash and signature."""
    body = {k: v for k, v in record.items() if k not in ("hash", "signature")}
    return canonical_json(body).encode("utf-8")


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_form(record)).hexdigest()


# ---------------------------------------------------------------------------
# Ed25519 verification (RFC 8032 sections 5.1 and 6), pure Python
# ---------------------------------------------------------------------------

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493  # the group order (RFC 8032 "L")
D = -121665 * pow(121666, -1, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)

Point = tuple[int, int, int, int]  # extended homogeneous coordinates (X, Y, Z, T), x=X/Z, y=Y/Z, xy=T/Z
IDENTITY: Point = (0, 1, 1, 0)


def _point_add(p: Point, q: Point) -> Point:
    """RFC 8032 5.1.4 (complete for Ed25519, doubling included)."""
    a = (p[1] - p[0]) * (q[1] - q[0]) % P
    b = (p[1] + p[0]) * (q[1] + q[0]) % P
    c = 2 * p[3] * q[3] * D % P
    d = 2 * p[2] * q[2] % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _point_neg(p: Point) -> Point:
    return (-p[0] % P, p[1], p[2], -p[3] % P)


def _scalar_mul(s: int, p: Point) -> Point:
    q = IDENTITY
    while s > 0:
        if s & 1:
            q = _point_add(q, p)
        p = _point_add(p, p)
        s >>= 1
    return q


def _double_scalar_mul(s: int, p: Point, t: int, q: Point) -> Point:
    """[s]p + [t]q in one pass (Straus/Shamir); verification is public data."""
    pq = _point_add(p, q)
    r = IDENTITY
    for i in reversed(range(max(s.bit_length(), t.bit_length()))):
        r = _point_add(r, r)
        bits = ((s >> i) & 1, (t >> i) & 1)
        if bits == (1, 0):
            r = _point_add(r, p)
        elif bits == (0, 1):
            r = _point_add(r, q)
        elif bits == (1, 1):
            r = _point_add(r, pq)
    return r


def _recover_x(y: int, sign: int) -> Optional[int]:
    """RFC 8032 5.1.3, steps 2-4; None if y does not encode a point."""
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, -1, P) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


def point_decompress(encoded: bytes) -> Optional[Point]:
    if len(encoded) != 32:
        return None
    y = int.from_bytes(encoded, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % P)


def point_compress(p: Point) -> bytes:
    z_inv = pow(p[2], -1, P)
    x, y = p[0] * z_inv % P, p[1] * z_inv % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


_BASE_Y = 4 * pow(5, -1, P) % P
_BASE_X = _recover_x(_BASE_Y, 0)
assert _BASE_X is not None
BASE: Point = (_BASE_X, _BASE_Y, 1, _BASE_X * _BASE_Y % P)


def ed25519_public_key(seed: bytes) -> bytes:
    """RFC 8032 5.1.5: the public key of a 32-byte private key (seed)."""
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return point_compress(_scalar_mul(a, BASE))


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """RFC 8032 5.1.7 with the cofactorless equation [S]B = R + [k]A.

    R' = [S]B - [k]A is compared with R by encoding, which also rejects a
    non-canonical R; S must be below L. Go's crypto/ed25519 decides the same.
    """
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a = point_decompress(public_key)
    if a is None or point_decompress(signature[:32]) is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= L:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(), "little") % L
    r = _double_scalar_mul(s, BASE, k, _point_neg(a))
    return point_compress(r) == signature[:32]


# ---------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------


class InputError(Exception):
    """A file, URL or argument the script cannot use (exit status 2)."""


_BASE64URL = re.compile(r"[A-Za-z0-9_-]*\Z")


def decode_base64url(text: str, size: int) -> Optional[bytes]:
    """base64url without padding (RFC 4648 section 5) of exactly size bytes."""
    if not isinstance(text, str) or not _BASE64URL.match(text) or len(text) % 4 == 1:
        return None
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return raw if len(raw) == size else None


def key_id_of(public_key: bytes) -> str:
    return "ed25519:" + hashlib.sha256(public_key).hexdigest()[:16]


_HEX_HASH = re.compile(r"[0-9a-f]{64}\Z")


class KeySet:
    """The public keys a signature may be checked against, by key id."""

    def __init__(self) -> None:
        self.keys: dict[str, bytes] = {}

    def add(self, key_id: str, public_key: bytes) -> None:
        if point_decompress(public_key) is None:
            raise InputError(f"key {key_id}: not an Ed25519 public key (not a curve point)")
        if key_id_of(public_key) != key_id:
            raise InputError(f"key {key_id}: its id does not match its bytes ({key_id_of(public_key)})")
        self.keys[key_id] = public_key

    def verify(self, key_id: str, hash_hex: str, signature: str) -> Optional[str]:
        """None if signature is key_id's valid signature of the hash, else why not."""
        public_key = self.keys.get(key_id)
        if public_key is None:
            return f"signed with unknown key {key_id!r}" if key_id else "no key_id"
        if not _HEX_HASH.match(hash_hex):
            return f"hash {_clip(hash_hex)} is not 64 lowercase hex digits"
        if not signature:
            return "no signature"
        sig = decode_base64url(signature, 64)
        if sig is None:
            return "signature is not 64 bytes of base64url"
        if not ed25519_verify(public_key, bytes.fromhex(hash_hex), sig):
            return f"signature does not verify with key {key_id}"
        return None


def read_source(source: str) -> bytes:
    """The bytes of a file path, or of an http(s) URL."""
    try:
        if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", source):
            with urllib.request.urlopen(source, timeout=60) as resp:  # noqa: S310 (auditor's choice)
                return resp.read()
        with open(source, "rb") as f:
            return f.read()
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read {source}: {e}") from None


def load_keys(sources: list[str]) -> KeySet:
    """Merge the keys of every source (GET /api/v1/ledger/keys JSON)."""
    keys = KeySet()
    for source in sources:
        try:
            doc = parse_json(read_source(source))
        except JSONError as e:
            raise InputError(f"{source}: not JSON: {e}") from None
        entries = doc.get("keys") if isinstance(doc, dict) else None
        if not isinstance(entries, list):
            raise InputError(f'{source}: expected {{"keys": [...]}}')
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("key_id"), str):
                raise InputError(f"{source}: keys[{i}] has no key_id")
            key_id = entry["key_id"]
            if entry.get("alg") != "Ed25519":
                raise InputError(f"{source}: key {key_id}: alg {entry.get('alg')!r}, expected 'Ed25519'")
            public_key = decode_base64url(entry.get("public_key"), 32)
            if public_key is None:
                raise InputError(f"{source}: key {key_id}: public_key is not 32 bytes of base64url")
            keys.add(key_id, public_key)
    if not keys.keys:
        raise InputError("no public keys given")
    return keys


# ---------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------

DEFAULT_KNOWN_TYPES = ("ExecutionQueued", "ExecutionStarted", "ExecutionAbandoned", "ExecutionResumed",
                       "ExecutionCompleted", "ExecutionFailed", "ExecutionErased")
# The highest schema_version of any type (version 2 seals content).
DEFAULT_MAX_SCHEMA_VERSION = 2

STRING_MEMBERS = ("event_id", "type", "execution_id", "occurred_at", "correlation_id",
                  "causation_id", "actor", "prev_hash", "key_id")
INTEGER_MEMBERS = ("schema_version", "sequence")
PROOF_MEMBERS = ("hash", "signature")
# Every record has all of them, hash and signature included (as Go's
# requiredMembers): an unsealed envelope is not a record.
ENVELOPE_MEMBERS = STRING_MEMBERS + INTEGER_MEMBERS + ("data",) + PROOF_MEMBERS
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?"
                      r"(?:Z|[+-](\d{2}):(\d{2}))\Z")


class Malformed(ValueError):
    """Not a ledger record."""


@dataclass
class Envelope:
    """A record that has the shape of a ledger envelope."""

    record: dict[str, Any]
    event_id: str
    type: str
    schema_version: int
    execution_id: str
    sequence: int
    prev_hash: str
    key_id: str
    hash: str
    signature: str
    data: Any


def _integer(value: Any, name: str) -> int:
    if not isinstance(value, Number) or not _INTEGER_LITERAL.match(value.text) or len(value.text) > 20:
        raise Malformed(f"{name} is not an integer")
    n = int(value.text)
    if not INT64_MIN <= n <= INT64_MAX:
        raise Malformed(f"{name} is out of range")
    return n


def _check_timestamp(value: str) -> None:
    m = _RFC3339.match(value)
    if not m:
        raise Malformed(f"occurred_at {_clip(value)} is not an RFC 3339 timestamp")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]
            and hour < 24 and minute < 60 and second < 60):
        raise Malformed(f"occurred_at {_clip(value)} is not a valid time")
    if m.group(7) is not None and (int(m.group(7)) > 23 or int(m.group(8)) > 59):
        raise Malformed(f"occurred_at {_clip(value)} has an invalid offset")


def read_envelope(record: Any) -> Envelope:
    """Check a parsed record's shape (not its proofs)."""
    if not isinstance(record, dict):
        raise Malformed("not a JSON object")
    missing = [m for m in ENVELOPE_MEMBERS if m not in record]
    if missing:
        raise Malformed("missing " + ", ".join(missing))
    for name in STRING_MEMBERS + PROOF_MEMBERS:
        if not isinstance(record[name], str):
            raise Malformed(f"{name} is not a string")
    schema_version = _integer(record["schema_version"], "schema_version")
    sequence = _integer(record["sequence"], "sequence")
    for name in ("event_id", "type", "execution_id"):
        if not record[name]:
            raise Malformed(f"{name} is empty")
    if sequence < 1:
        raise Malformed(f"sequence {sequence} is not positive")
    _check_timestamp(record["occurred_at"])
    return Envelope(record=record, event_id=record["event_id"], type=record["type"],
                    schema_version=schema_version, execution_id=record["execution_id"],
                    sequence=sequence, prev_hash=record["prev_hash"], key_id=record["key_id"],
                    hash=record["hash"], signature=record["signature"],
                    data=record["data"])


@dataclass(frozen=True)
class SchemaPolicy:
    """Which types and schema versions this audit can read."""

    known_types: frozenset[str]
    max_version: int

    def problem(self, env: Envelope) -> Optional[str]:
        if env.type not in self.known_types:
            return f"unknown event type {env.type!r}"
        if not 1 <= env.schema_version <= self.max_version:
            return f"unknown schema version {env.schema_version} of {env.type}"
        if not isinstance(env.data, dict):
            return f"data of {env.type} is not a JSON object"
        return None


def check_proofs(env: Envelope, keys: KeySet) -> Optional[tuple[str, str]]:
    """The first failing proof of a record on its own: canonical form, hash, signature.

    The link is not judged here (as Go's CheckRecord given the record's own
    prev_hash). Returns (kind, detail) or None if the record is authentic.
    """
    try:
        computed = record_hash(env.record)
    except CanonicalError as e:
        return ("malformed", f"canonical form: {e}")
    if computed != env.hash:
        return ("bad_hash", "hash does not match the event's canonical form")
    why = keys.verify(env.key_id, env.hash, env.signature)
    if why:
        return ("bad_signature", why)
    return None


# ---------------------------------------------------------------------------
# Audit (same rules as eventstore/audit.go)
# ---------------------------------------------------------------------------

PROBLEM_KINDS = ("duplicate", "fork", "gap", "bad_hash", "bad_link", "bad_signature",
                 "unknown_schema", "malformed")
JSON_COUNT_NAMES = {"duplicate": "duplicates", "fork": "forks", "gap": "gaps", "bad_hash": "bad_hashes",
                    "bad_link": "bad_links", "bad_signature": "bad_signatures",
                    "unknown_schema": "unknown_schemas", "malformed": "malformed"}


@dataclass
class Location:
    line: int
    partition: Optional[int] = None
    offset: Optional[int] = None

    def __str__(self) -> str:
        if self.partition is None or self.offset is None:
            return f"line {self.line}"
        return f"{self.partition}:{self.offset} (line {self.line})"


@dataclass
class Problem:
    kind: str
    where: Location
    detail: str
    execution_id: Optional[str] = None
    sequence: Optional[int] = None

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "partition": self.where.partition, "offset": self.where.offset,
                "line": self.where.line, "execution_id": self.execution_id, "sequence": self.sequence,
                "detail": self.detail}

    def __str__(self) -> str:
        about = f"execution {self.execution_id} sequence {self.sequence}: " if self.execution_id else ""
        return f"{self.kind} at {self.where}: {about}{self.detail}"


@dataclass
class Audit:
    """Reads records in log order and reports what is wrong with them."""

    keys: KeySet
    policy: SchemaPolicy
    chains: dict[str, list[str]] = field(default_factory=dict)  # execution -> hash per sequence
    executions: set[str] = field(default_factory=set)
    events: int = 0
    problems: list[Problem] = field(default_factory=list)

    def add_malformed(self, where: Location, detail: str) -> None:
        self.events += 1
        self.problems.append(Problem("malformed", where, detail))

    def add(self, where: Location, record: Any) -> None:
        """Check one record; the rules and their order are Go's Audit.Add."""
        self.events += 1
        try:
            env = read_envelope(record)
        except Malformed as e:
            self.problems.append(Problem("malformed", where, f"ledger record: {e}"))
            return
        self.executions.add(env.execution_id)
        seq = env.sequence

        def report(kind: str, detail: str) -> None:
            self.problems.append(Problem(kind, where, detail, env.execution_id, seq))

        # Its own proofs first: an altered or unsigned record proves nothing
        # about the chain, not even that it duplicates an event. Reported
        # alone; the record never extends the chain.
        found = check_proofs(env, self.keys)
        if found:
            report(*found)
            return
        chain = self.chains.setdefault(env.execution_id, [])  # hash per sequence, "" = not seen
        n = len(chain)
        if seq <= n and chain[seq - 1]:
            if chain[seq - 1] == env.hash:
                report("duplicate", "the same event again")
            else:
                report("fork", "a different, validly signed event for a sequence already recorded: "
                       f"key {env.key_id} signed hash {env.hash}, the ledger already has {chain[seq - 1]}")
            return
        if seq > n + 1:
            report("gap", f"sequences {n + 1} to {seq - 1} are missing")
        # The link can be checked only when the previous event is known.
        if seq == 1 or (seq - 2 < n and chain[seq - 2]):
            prev = chain[seq - 2] if seq > 1 else ""
            if env.prev_hash != prev:
                # Does not extend the chain: the genuine event may still follow.
                if seq == 1:
                    report("bad_link", "prev_hash of sequence 1 is not empty")
                else:
                    report("bad_link", f"prev_hash does not match the hash of sequence {seq - 1}")
                return
        why = self.policy.problem(env)
        if why:
            # This audit cannot read it, but it is authentic: it takes its place.
            report("unknown_schema", why)
        chain.extend([""] * (seq - len(chain)))
        chain[seq - 1] = env.hash

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(PROBLEM_KINDS, 0)
        for p in self.problems:
            counts[p.kind] += 1
        return counts

    def report_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"events": self.events, "executions": len(self.executions)}
        for kind, n in self.counts().items():
            out[JSON_COUNT_NAMES[kind]] = n
        out["problems"] = [p.as_json() for p in self.problems]
        return out

    def report_text(self, name: str) -> str:
        lines = [f"{name}: {self.events} events, {len(self.executions)} executions, "
                 f"{len(self.problems)} problems"]
        lines += [f"  {kind:<15} {n}" for kind, n in self.counts().items()]
        lines += [str(p) for p in self.problems]
        lines.append("OK: every event verifies" if not self.problems else "FAILED: the ledger has problems")
        return "\n".join(lines)


def _location(obj: dict[str, Any], line: int) -> Location:
    where = Location(line)
    for name in ("partition", "offset"):
        v = obj.get(name)
        if not isinstance(v, Number) or not _INTEGER_LITERAL.match(v.text) or int(v.text) < 0:
            raise Malformed(f"wrapped record: {name} is not a non-negative integer")
        setattr(where, name, int(v.text))
    return where


def _wrapper_location(raw: bytes, line: int) -> Optional[Location]:
    """Where a line that is not I-JSON sits, if its wrapper is readable.

    An exporter embeds a record that is JSON as an object, so a record with
    a repeated member name (which Go also rejects) makes the whole line fail
    the strict parse; its partition and offset are still worth reporting.
    """
    duplicated: list[bool] = []  # per object, innermost first: the wrapper is last

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        duplicated.append(len({name for name, _ in pairs}) != len(pairs))
        return dict(pairs)

    try:
        value = json.loads(raw, parse_int=Number, parse_float=Number,
                           parse_constant=_reject_constant, object_pairs_hook=pairs_hook)
    except (ValueError, RecursionError):
        return None
    if not (isinstance(value, dict) and "record" in value) or duplicated[-1]:
        return None
    try:
        return _location(value, line)
    except Malformed:
        return None


def audit_line(audit: Audit, line: int, raw: bytes) -> None:
    """Feed one JSON line: a record, or {"partition","offset","record"}."""
    try:
        value = parse_json(raw)
    except JSONError as e:
        where = _wrapper_location(raw, line)
        if where is None:
            audit.add_malformed(Location(line), f"not JSON: {e}")
        else:
            audit.add_malformed(where, f"ledger record: not I-JSON: {e}")
        return
    if not (isinstance(value, dict) and "record" in value):
        audit.add(Location(line), value)
        return
    try:
        where = _location(value, line)
    except Malformed as e:
        audit.add_malformed(Location(line), str(e))
        return
    record = value["record"]
    if isinstance(record, str):  # the Kafka value's text, e.g. when it is not JSON
        try:
            record = parse_json(record)
        except JSONError as e:
            audit.add_malformed(where, f"ledger record: not JSON: {e}")
            return
    audit.add(where, record)


def read_lines(source: str) -> Iterator[tuple[int, bytes]]:
    """Numbered non-blank lines of a file or stdin, split on LF only."""
    try:
        stream: IO[bytes] = sys.stdin.buffer if source == "-" else open(source, "rb")
    except OSError as e:
        raise InputError(f"cannot read {source}: {e}") from None
    with stream:
        for number, raw in enumerate(stream, 1):
            if raw.strip():
                yield number, raw


# ---------------------------------------------------------------------------
# Test vectors
# ---------------------------------------------------------------------------


def _first_difference(want: str, got: str) -> str:
    i = next((i for i, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got)))
    return f"at character {i}: expected {want[i:i + 24]!r}, got {got[i:i + 24]!r}"


def check_vector(vector: dict[str, Any], keys: KeySet, key_id: str) -> list[str]:
    """What differs between the vector and what this script computes."""
    try:
        record = parse_json(vector["record"])
        if not isinstance(record, dict):
            return ["record is not a JSON object"]
        canonical = canonical_form(record).decode("utf-8")
    except (JSONError, CanonicalError) as e:
        return [f"record: {e}"]
    errors = []
    if canonical != vector["canonical"]:
        errors.append("canonical form differs " + _first_difference(vector["canonical"], canonical))
    computed = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    if computed != vector["hash"]:
        errors.append(f"hash {computed}, vector says {vector['hash']}")
    if record.get("hash") != vector["hash"]:
        errors.append(f"record's hash {record.get('hash')!r} is not the vector's")
    if record.get("signature") != vector["signature"]:
        errors.append("record's signature is not the vector's")
    if record.get("key_id") != key_id:
        errors.append(f"record's key_id {record.get('key_id')!r} is not the file's {key_id}")
    why = keys.verify(key_id, vector["hash"], vector["signature"])
    if why:
        errors.append(why)
    return errors


def run_vectors(path: str) -> int:
    try:
        doc = parse_json(read_source(path))
        key_id, public = doc["key_id"], doc["public_key"]
        seed = bytes.fromhex(doc["key_seed_hex"])
        vectors = doc["vectors"]
    except (JSONError, KeyError, TypeError, ValueError) as e:
        raise InputError(f"{path}: not a vectors file: {e}") from None
    failures = 0
    public_key = decode_base64url(public, 32)
    if public_key is None or ed25519_public_key(seed) != public_key:
        print("FAIL key: public_key is not the key of key_seed_hex")
        return 1
    keys = KeySet()
    keys.add(key_id, public_key)  # raises InputError if the id does not match
    print(f"ok   key {key_id}: derives from key_seed_hex, key_id matches its bytes")
    for vector in vectors:
        errors = check_vector(vector, keys, key_id)
        print(("ok   " if not errors else "FAIL ") + vector["name"] + "".join("\n     " + e for e in errors))
        failures += bool(errors)
    print(f"{len(vectors) - failures} of {len(vectors)} vectors ok")
    return 1 if failures or not vectors else 0


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return n


def _type_list(text: str) -> frozenset[str]:
    types = frozenset(t.strip() for t in text.split(",") if t.strip())
    if not types:
        raise argparse.ArgumentTypeError("no event types given")
    return types


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="verify_ledger.py",
        description="Verify the Integr8sCode event ledger offline: canonical form (RFC 8785), "
                    "SHA-256 hash chain and Ed25519 signatures (RFC 8032). Standard library only.",
        epilog="Exit status: 0 no problem, 1 problems found, 2 usage or input error. "
               "The format and the audit's rules are described at the top of this script.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    vec = sub.add_parser("vectors", help="check this script against docs/events/vectors.json",
                         description="Recompute canonical form, hash and signature check of every "
                                     "test vector; one line per vector.")
    vec.add_argument("file", metavar="VECTORS_JSON", help="path or URL of vectors.json")

    exp = sub.add_parser("export", help="audit a ledger export (JSON lines)",
                         description="Audit a ledger export: every record's hash, link and signature, "
                                     "and every execution's sequence for gaps, duplicates and forks.")
    exp.add_argument("file", metavar="FILE",
                     help='JSON lines, each a record or {"partition":P,"offset":O,"record":R}; "-" for stdin')
    exp.add_argument("--keys", action="append", required=True, metavar="FILE_OR_URL",
                     help="public keys as served by GET /api/v1/ledger/keys (file or http(s) URL); "
                          "repeat to merge several sources. Required: without keys nothing proves who wrote "
                          "the events")
    exp.add_argument("--json", action="store_true", help="print the report as JSON")
    exp.add_argument("--known-types", type=_type_list, default=frozenset(DEFAULT_KNOWN_TYPES),
                     metavar="T1,T2,...",
                     help="comma-separated event types this audit accepts (replaces the default: "
                          + ",".join(DEFAULT_KNOWN_TYPES) + ")")
    exp.add_argument("--max-schema-version", type=_positive_int, default=DEFAULT_MAX_SCHEMA_VERSION, metavar="N",
                     help=f"highest schema_version accepted (default {DEFAULT_MAX_SCHEMA_VERSION})")
    return parser


def run_export(args: argparse.Namespace) -> int:
    keys = load_keys(args.keys)
    audit = Audit(keys, SchemaPolicy(args.known_types, args.max_schema_version))
    for number, raw in read_lines(args.file):
        audit_line(audit, number, raw)
    if args.json:
        print(json.dumps(audit.report_json(), ensure_ascii=False, indent=2))
    else:
        print(audit.report_text("stdin" if args.file == "-" else args.file))
    return 1 if audit.problems else 0


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "vectors":
            return run_vectors(args.file)
        return run_export(args)
    except InputError as e:
        print(f"verify_ledger.py: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
