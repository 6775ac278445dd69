/**
 * The Node-API addons that scripts/build-native compiles into build/native/ (absent without a C
 * compiler: each has a JavaScript or ONNX fallback). Loaded once, on first use.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * A loader of `build/native/<name>.node`: the addon, or null when it is not built, disabled with
 * `<disableVar>=0`, or fails to load (then a warning says so once, and what runs instead).
 */
export function nativeAddon<T>(name: string, disableVar: string, fallback: string): () => T | null {
  let addon: T | null | undefined;
  return () => {
    if (addon !== undefined) return addon;
    addon = null;
    if (process.env[disableVar] === '0') return addon;
    // dist/src/util/ → the repository root → build/native/.
    const file = fileURLToPath(new URL(`../../../build/native/${name}.node`, import.meta.url));
    if (!existsSync(file)) return addon;
    try {
      addon = createRequire(import.meta.url)(file) as T;
    } catch (e) {
      process.emitWarning(`${file} did not load (${(e as Error).message.split('\n')[0]}); ${fallback}. Rebuild with scripts/build-native.`);
    }
    return addon;
  };
}
