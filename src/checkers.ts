// The composition of checks and config: the one module above both that knows the probes (through
// the catalog, checks/index.ts). The config validates a check with the declaration it is handed
// here, so neither src/health nor src/config imports a probe.
import { CATALOG } from '../checks/index.js';
import type { ConfigFiles } from './config/files.js';
import { loadConfigFileWith, parseConfigWith, type LoadOptions } from './config/load.js';
import type { CheckConfig, Config, RealServerConfig } from './config/model.js';
import type { CheckTarget, Checker } from './health/checker.js';
import { createWith } from './health/schema.js';

export { CATALOG };

export function createChecker(check: CheckConfig): Checker {
  // The config made this check with the same catalog: an unknown kind is a programming error.
  return createWith(CATALOG, check);
}

/** Where a check of a real server goes: its own address/port when the check names them. */
export function checkTarget(rs: RealServerConfig, check: CheckConfig): CheckTarget {
  const key = rs.destination.key;
  const via = rs.dataPath;
  // Through the data path: the VIP and port, the mark that reaches this server alone.
  if (via)
    return {
      family: via.family,
      address: via.address,
      port: via.port,
      dataPath: { mark: via.mark, server: key.address },
    };
  return {
    family: check.address?.family ?? key.family,
    address: check.address?.address ?? key.address,
    port: check.port ?? key.port,
  };
}

/** Parses and validates config text with every check the daemon has (see parseConfigWith). */
export function parseConfig(
  text: string,
  file: string,
  env: NodeJS.ProcessEnv,
  files?: ConfigFiles,
): Config {
  return parseConfigWith(CATALOG, text, file, env, files);
}

/** Reads and validates a config file with every check the daemon has (see loadConfigFileWith). */
export function loadConfigFile(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
  options: LoadOptions = {},
): Promise<Config> {
  return loadConfigFileWith(CATALOG, file, env, options);
}
