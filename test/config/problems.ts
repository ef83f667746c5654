// A config's problems as "path: message" lines, for tests that table them; [] when it is valid.
import { parseConfig } from '../../src/checkers.js';
import { ConfigError } from '../../src/config/load.js';

export function configProblems(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(text, 'test.yaml', env);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.map((p) => `${p.path.join('.')}: ${p.message}`);
    throw e;
  }
  return [];
}
