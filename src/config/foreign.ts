// Configs in other daemons' formats (ldirectord.cf, keepalived.conf) are translated into the
// native config's plain data, then validated by the native reader like a YAML file: one set of
// rules, and `ipvs-warden convert` prints the same data as YAML, so check-config of the output
// gives the same effective config by construction. A translator is pure: text in, data out.
import type { Path } from './reader.js';

/** Where a translated value came from, for problems and for convert's comments. */
export interface SourceNote {
  /** The native path the note belongs to (`virtual_services[0].real_servers[1]`). */
  readonly path: Path;
  /**
   * 1-based line in the source file (of an included file: see `file`); 0 for the source
   * daemon's own default, which no line wrote.
   */
  readonly line: number;
  /** The file the line is in, when not the one given (keepalived's `include`). */
  readonly file?: string;
  /** Where meaning shifts, said for the operator: convert writes it as a comment. */
  readonly text?: string;
}

/** A problem in the source: the line it is on and what to do about it. */
export interface SourceProblem {
  readonly line: number;
  readonly file?: string;
  /** The directive as written (`emailalert`), for the message. */
  readonly directive: string;
  readonly message: string;
}

export interface Translation {
  /** The native config as a YAML file would hold it: plain data only. */
  readonly raw: Record<string, unknown>;
  /**
   * One entry per native value the source set (its line: native problems are reported at it),
   * and notes where the meaning shifts.
   */
  readonly notes: readonly SourceNote[];
  /** Directives that cannot be honoured: the whole file is refused, each named by its line. */
  readonly problems: readonly SourceProblem[];
  /** What the source holds that is not ours and is left as it is (keepalived's vrrp blocks). */
  readonly left: readonly SourceNote[];
}

export type ConfigFormat = 'yaml' | 'ldirectord' | 'keepalived';
