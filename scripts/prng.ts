// The one seeded PRNG lives in core (training shuffles with it); scripts use the same.
export * from '../src/core/prng';
