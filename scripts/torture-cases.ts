/**
 * Fault cases run against the built CLI, as a hostile user and a flaky machine would, one file per
 * class of fault under scripts/torture-cases/. `scripts/torture` runs them and prints a table;
 * `test/cli/faults.test.ts` runs each as a test.
 */
import type { Case } from './torture-cases/harness.js';
import { FILES } from './torture-cases/files.js';
import { ROUND_ONE } from './torture-cases/round-one.js';

export type { Case, Context } from './torture-cases/harness.js';

export const CASES: Case[] = [...ROUND_ONE, ...FILES];
