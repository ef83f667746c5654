// (stub: replaced by the translator)
import type { Translation } from './foreign.js';
export function translateKeepalived(
  _text: string,
  _file: string,
  _include: (pattern: string, from: string) => { file: string; text: string }[],
): Translation {
  return { raw: { virtual_services: [] }, notes: [], problems: [], left: [] };
}
