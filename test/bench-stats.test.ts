// The statistics the bench reports with: checked against enumerating every outcome.
import test from 'ava';
import { signTest } from '../bench/common.js';

/** The two-sided sign test by brute force: every one of the 2^n sign patterns, counted. */
function enumerated(positive: number, n: number): number {
  const observed = Math.abs(2 * positive - n);
  let asExtreme = 0;
  for (let pattern = 0; pattern < 2 ** n; pattern++) {
    let ones = 0;
    for (let bit = pattern; bit > 0; bit >>= 1) ones += bit & 1;
    if (Math.abs(2 * ones - n) >= observed) asExtreme++;
  }
  return asExtreme / 2 ** n;
}

test('signTest matches the count over every sign pattern, for every split of up to 14 pairs', (t) => {
  for (let n = 1; n <= 14; n++)
    for (let positive = 0; positive <= n; positive++)
      t.true(Math.abs(signTest(positive, n) - enumerated(positive, n)) < 1e-12, `${positive} of ${n}`);
});

test('signTest: known values, and a lopsided split of many pairs', (t) => {
  t.is(signTest(3, 6), 1);
  t.true(Math.abs(signTest(20, 24) - (2 * (10626 + 2024 + 276 + 24 + 1)) / 2 ** 24) < 1e-15);
  t.is(signTest(24, 24), signTest(0, 24));
  t.true(signTest(20, 24) < 0.002);
});
