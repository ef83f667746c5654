// A program run to its end, as the tests that judge files by their own tools run them.
import { execFile } from 'node:child_process';

/** The exit code (1 for a signal or a spawn failure) and stdout + stderr together. */
export function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, (error, out, err) =>
      resolve({
        code: typeof error?.code === 'number' ? error.code : error ? 1 : 0,
        out: out + err,
      }),
    );
  });
}
