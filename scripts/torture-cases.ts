/**
 * Fault cases run against the built CLI, as a hostile user and a flaky machine would, one file per
 * class of fault under scripts/torture-cases/. `scripts/torture` runs them and prints a table;
 * `test/cli/faults.test.ts` runs each as a test.
 */
import type { Case } from './torture-cases/harness.js';
import { BATCH_NORM } from './torture-cases/batch-norm.js';
import { BN_IMPORT } from './torture-cases/bn-import.js';
import { BOUNDS } from './torture-cases/bounds.js';
import { DATA } from './torture-cases/data.js';
import { DEVKIT } from './torture-cases/devkit.js';
import { FILES } from './torture-cases/files.js';
import { FOREIGN_ONNX } from './torture-cases/foreign-onnx.js';
import { INSTALL } from './torture-cases/install.js';
import { LOCK } from './torture-cases/lock.js';
import { ROUND_ONE } from './torture-cases/round-one.js';
import { SCALE } from './torture-cases/scale.js';
import { SERVE } from './torture-cases/serve.js';
import { STOPS } from './torture-cases/stops.js';

export type { Case, Context } from './torture-cases/harness.js';

export const CASES: Case[] = [
  ...ROUND_ONE,
  ...LOCK,
  ...BOUNDS,
  ...STOPS,
  ...DATA,
  ...SCALE,
  ...FILES,
  ...INSTALL,
  ...FOREIGN_ONNX,
  ...BATCH_NORM,
  ...SERVE,
  ...BN_IMPORT,
  ...DEVKIT,
];
