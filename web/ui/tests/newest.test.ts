import { describe, expect, it } from 'vitest';
import { newestOnly } from '../src/lib/newest';

describe('newestOnly', () => {
  it('keeps the answer of the request that began last, whatever the order answers arrive in', () => {
    const loads = newestOnly();
    const first = loads.begin(); // everyone's executions
    const second = loads.begin(); // then filtered by owner
    expect(second()).toBe(true);
    expect(first()).toBe(false); // arriving last, it is dropped
    expect(second()).toBe(true);
  });

  it('a single request is always current, and each instance counts on its own', () => {
    const a = newestOnly();
    const b = newestOnly();
    const onlyA = a.begin();
    b.begin();
    b.begin();
    expect(onlyA()).toBe(true);
  });
});
