// Writes the demo's trigger (the generator's sunglasses at the average pose) as a
// trigger file for --unlearn-trigger:  npx tsx scripts/make-demo/trigger.ts OUT.h5
// The demo's bd_valid.h5 does not pair with valid.h5 image by image, so
// --unlearn-from-poisoned cannot derive it from the data.
import { writeTrigger } from '../../src/core/data/trigger';
import { H, W, sunglassesTrigger } from './dataset';

const out = process.argv[2];
if (!out) {
  console.error('usage: npx tsx scripts/make-demo/trigger.ts OUT.h5');
  process.exit(2);
}
await writeTrigger(out, { height: H, width: W, channels: 3, ...sunglassesTrigger() });
console.log(`wrote ${out}`);
