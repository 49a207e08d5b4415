// Which .h5 files the audit's data pickers list first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { candidateDataFiles, matchesSlot, rankDataFiles, scoreDataFile } from '../../src/host/dataFiles';

const model = '/ws/lab/bd_net.h5';
const lab = ['/ws/lab/valid.h5', '/ws/lab/bd_valid.h5', '/ws/lab/test.h5', '/ws/lab/bd_test.h5'];
const noise = ['/ws/other/weights.h5', '/ws/lab/bd_net.h5', '/ws/lab/bd_net.h5.audit/repaired_2.h5', '/ws/readme.md', '/ws/lab/model.keras'];

test('candidates exclude the model itself, audit outputs and non-HDF5 files', () => {
  const c = candidateDataFiles([...lab, ...noise], model);
  assert.deepEqual(c.sort(), [...lab, '/ws/other/weights.h5'].sort());
});

test('the lab layout: each slot gets its own file first', () => {
  const all = [...noise, ...lab];
  assert.equal(rankDataFiles(all, model, 'cleanValid')[0], '/ws/lab/valid.h5');
  assert.equal(rankDataFiles(all, model, 'poisonedValid')[0], '/ws/lab/bd_valid.h5');
  assert.equal(rankDataFiles(all, model, 'cleanTest')[0], '/ws/lab/test.h5');
  assert.equal(rankDataFiles(all, model, 'poisonedTest')[0], '/ws/lab/bd_test.h5');
});

test('unnamed files come after the likely ones', () => {
  const ranked = rankDataFiles([...noise, ...lab], model, 'cleanValid');
  assert.equal(ranked.at(-1), '/ws/other/weights.h5');
});

test('students\' names: clean_/poisoned_, triggers, val/dev', () => {
  const files = ['/d/sunglasses_poisoned_data.h5', '/d/clean_validation_data.h5', '/d/clean_test_data.h5', '/d/eyebrows_test.h5'];
  assert.equal(rankDataFiles(files, '/d/net.h5', 'cleanValid')[0], '/d/clean_validation_data.h5');
  assert.equal(rankDataFiles(files, '/d/net.h5', 'poisonedTest')[0], '/d/eyebrows_test.h5');
  assert.equal(rankDataFiles(files, '/d/net.h5', 'cleanTest')[0], '/d/clean_test_data.h5');
  assert.ok(scoreDataFile('/d/val.h5', 'cleanValid') > 0);
  assert.ok(scoreDataFile('/d/dev_set.h5', 'cleanValid') > 0);
  // "bd" only counts as a word, not inside another one
  assert.equal(scoreDataFile('/d/abdomen.h5', 'poisonedValid') < 0, true);
});

test('files beside the model win ties', () => {
  const ranked = rankDataFiles(['/z/valid.h5', '/ws/lab/valid.h5'], model, 'cleanValid');
  assert.deepEqual(ranked, ['/ws/lab/valid.h5', '/z/valid.h5']);
});

test('matchesSlot: only names that say exactly that slot are preselected', () => {
  assert.equal(matchesSlot('/d/bd_valid.h5', 'poisonedValid'), true);
  assert.equal(matchesSlot('/d/valid.h5', 'poisonedValid'), false);
  assert.equal(matchesSlot('/d/valid.h5', 'cleanValid'), true);
  assert.equal(matchesSlot('/d/test.h5', 'cleanTest'), true);
  assert.equal(matchesSlot('/d/bd_test.h5', 'cleanTest'), false);
  assert.equal(matchesSlot('/d/clean.h5', 'cleanTest'), false);
});
