// Trigger files: what the scan writes, the audit reads back; a trigger that
// does not fit the model is refused with a clear message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { labelFromTriggerName, readTrigger, stamp, writeTrigger, type Trigger } from '../../src/core/data/trigger';
import { UserError } from '../../src/core/errors';
import { writeArraysH5 } from '../../src/core/h5/write';
import { tmpDir } from '../helpers';

const trigger = (h: number, w: number, c: number): Trigger => ({
  height: h, width: w, channels: c,
  mask: Float32Array.from({ length: h * w }, (_, i) => (i % 7) / 6),
  pattern: Float32Array.from({ length: h * w * c }, (_, i) => (i * 37) % 256),
});

test('a trigger written is read back unchanged', async () => {
  const dir = tmpDir();
  const t = trigger(5, 4, 3);
  const file = path.join(dir, 'trigger_7.h5');
  await writeTrigger(file, t);
  const back = await readTrigger(file, [5, 4, 3]);
  assert.deepEqual([back.height, back.width, back.channels], [5, 4, 3]);
  assert.deepEqual(back.mask, t.mask);
  assert.deepEqual(back.pattern, t.pattern);
  assert.equal(labelFromTriggerName(file), 7);
  assert.equal(labelFromTriggerName(path.join(dir, 'mine.h5')), undefined);
});

test('a trigger whose shape does not fit the model gives an error naming the file and both shapes', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'trigger_0.h5');
  await writeTrigger(file, trigger(5, 4, 3));
  await assert.rejects(readTrigger(file, [55, 47, 3]), (e: unknown) => {
    assert.ok(e instanceof UserError);
    assert.equal(e.file, file);
    assert.equal(e.code, 'bad-trigger');
    assert.match(e.message, /"mask" has shape \(5, 4\) but the model input needs \(55, 47\)/);
    return true;
  });
});

test('a mask outside [0, 1] and a file without a pattern are refused', async () => {
  const dir = tmpDir();
  const bad = path.join(dir, 'bad.h5');
  await writeArraysH5(bad, [
    { name: 'mask', shape: [2, 2], data: Float32Array.of(0, 0.5, 1, 1.5) },
    { name: 'pattern', shape: [2, 2, 1], data: new Float32Array(4) },
  ]);
  await assert.rejects(readTrigger(bad, [2, 2, 1]), /outside \[0, 1\]/);
  const noPattern = path.join(dir, 'nopattern.h5');
  await writeArraysH5(noPattern, [{ name: 'mask', shape: [2, 2], data: new Float32Array(4) }]);
  await assert.rejects(readTrigger(noPattern, [2, 2, 1]), /has no "pattern" dataset/);
});

test('stamp computes (1 - m)·x + m·p per pixel and channel', () => {
  const t: Trigger = { height: 1, width: 2, channels: 2, mask: Float32Array.of(0, 0.25), pattern: Float32Array.of(9, 9, 100, 200) };
  const x = Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8); // two images
  stamp(x, 2, t);
  assert.deepEqual(Array.from(x), [1, 2, 0.75 * 3 + 25, 0.75 * 4 + 50, 5, 6, 0.75 * 7 + 25, 0.75 * 8 + 50]);
});
