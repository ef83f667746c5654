// The VM lanes run the config files the README quotes (deploy/directors/), with only the
// lane's addresses and paths put in: a snippet that stopped working would fail a lane.
import { readFileSync } from 'node:fs';

const dir = new URL('../../../deploy/directors/', import.meta.url);

/** deploy/directors/NAME with each [from, to] replaced once; a `from` that is missing throws. */
export function snippet(name: string, edits: readonly (readonly [string, string])[]): string {
  let text = readFileSync(new URL(name, dir), 'utf8');
  for (const [from, to] of edits) {
    if (!text.includes(from))
      throw new Error(`deploy/directors/${name} no longer has "${from}": update the lane`);
    text = text.replace(from, to);
  }
  return text;
}
