// (stub: replaced by the translator)
import type { Translation } from './foreign.js';
export function translateLdirectord(_text: string, _file: string): Translation {
  return { raw: { virtual_services: [] }, notes: [], problems: [], left: [] };
}
