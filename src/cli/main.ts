#!/usr/bin/env node
/**
 * The `ilsvrc` command line. Each command lives in its own module (`make<Name>Command()`); adding
 * one is an import and an `addCommand` line below. Errors: a user mistake (UsageError or a
 * commander parse error, or a file-system failure of the user's disk or permissions: userFileError)
 * prints one line and exits 2; anything else is a bug and exits 1, with its
 * stack under --debug or ILSVRC_DEBUG=1.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { UsageError, userFileError } from '../util/errors.js';
import { Stopped, wasSignalled } from '../util/stop.js';
import { makeEvaluateCommand } from './evaluate.js';
import { makeExplainCommand } from './explain.js';
import { makeExportCommand } from './export.js';
import { makeImportCommand } from './import.js';
import { makeModelsCommand } from './models.js';
import { makePredictCommand } from './predict.js';
import { makeServeCommand } from './serve.js';
import { errorLine } from './options.js';
import { makeSummaryCommand } from './summary.js';
import { makeTrainCommand } from './train.js';
import { makeVisualizeCommand } from './visualize.js';

function makeProgram(): Command {
  const program = new Command('ilsvrc')
    .description('The classic ILSVRC classifiers as ONNX graphs: build, inspect, export, train and evaluate them.')
    .version('0.1.0')
    .option('--debug', 'print stack traces of unexpected errors')
    .showSuggestionAfterError(true);
  program.addCommand(makeModelsCommand());
  program.addCommand(makeSummaryCommand());
  program.addCommand(makeExportCommand());
  program.addCommand(makeExplainCommand());
  program.addCommand(makeTrainCommand());
  program.addCommand(makeVisualizeCommand());
  program.addCommand(makeEvaluateCommand());
  program.addCommand(makePredictCommand());
  program.addCommand(makeImportCommand());
  program.addCommand(makeServeCommand());
  // addCommand does not pass settings down, so every command is told here to throw, not exit.
  const quiet = (c: Command): void => {
    c.exitOverride().configureOutput({ outputError: () => {} });
    c.commands.forEach(quiet);
  };
  quiet(program);
  return program;
}

/** Runs the CLI and returns the exit status (0 ok, 1 a bug, 2 a usage mistake, 130 stopped by a signal with nothing to save). */
async function main(argv: readonly string[]): Promise<number> {
  try {
    await makeProgram().parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    return report(err, argv.includes('--debug') || process.env['ILSVRC_DEBUG'] === '1');
  }
}

/** Prints what went wrong and returns the exit status; stack traces only for bugs, under `debug`. */
export function report(err: unknown, debug: boolean, write: (text: string) => void = (t) => process.stderr.write(t)): number {
  if (err instanceof CommanderError) {
    // --help and --version have been printed; so has the help for a missing command, a usage mistake.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return err.exitCode;
    if (err.code === 'commander.help') return err.exitCode === 0 ? 0 : 2;
    write(`ilsvrc: ${errorLine(err)}\n`);
    return 2;
  }
  if (err instanceof Stopped) {
    write(`ilsvrc: ${err.message}\n`);
    return 130;
  }
  const user = err instanceof UsageError ? err : userFileError(err);
  if (user) {
    write(`ilsvrc: ${user.message.replace(/\s*\n\s*/g, ' ')}\n`);
    return 2;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  write(
    debug && e.stack
      ? `${e.stack}\n`
      : `ilsvrc: internal error: ${e.message}\n  (run with --debug or ILSVRC_DEBUG=1 for the stack trace)\n`,
  );
  return 1;
}

/** True when this file is the process's entry point (also through npm's bin symlink). */
function isEntry(): boolean {
  const arg = process.argv[1];
  if (!arg) return false;
  try {
    return realpathSync(arg) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntry()) {
  process.exitCode = await main(process.argv.slice(2));
  // The command is over: whatever is still open (a stuck worker thread, a handle a failed cleanup
  // left behind) must not keep the process alive. Unref'd, so a clean exit is not delayed. After a
  // stop, work still in flight (images being decoded for batches no one will read) is not waited for.
  setTimeout(() => process.exit(), wasSignalled() ? 50 : 3000).unref();
}
