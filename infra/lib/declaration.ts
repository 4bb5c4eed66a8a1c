// infra/stack.json: the one declaration of tables, bucket, KMS keys, functions, routes and
// environment. The local stack (scripts/stack.py) creates from it; this app deploys from it.

import * as fs from 'fs';
import * as path from 'path';

export interface IndexDeclaration {
  name: string;
  partitionKey: string;
  sortKey?: string;
  projection?: string;
}

export interface TableDeclaration {
  id: string;
  name: string;
  partitionKey: string;
  sortKey?: string;
  ttlAttribute: string;
  purpose: string;
  indexes?: IndexDeclaration[];
}

export interface BucketDeclaration {
  id: string;
  name: string;
  purpose: string;
  publicPrefix?: string;
}

export interface KmsKeyDeclaration {
  id: string;
  alias: string;
  keySpec: string;
  keyUsage: string;
}

export interface FunctionDeclaration {
  name: string;
  routes: string[];
  helpdeskRoutes?: string[];
  schedule?: string;
  environment: Record<string, string>;
  /** Memory and timeout set from measurements (docs/BENCHMARKS.md); the deployment's own
   * tuning otherwise. */
  sizing?: FunctionSizing;
}

export interface FunctionSizing {
  memoryMb: number;
  timeoutSeconds: number;
  /** What the figures rest on: the measurement and the headroom. */
  basis: string;
}

export interface DeploymentSetting {
  description: string;
  default?: string;
  secret?: boolean;
  allowed?: string[];
  /** Computed by the app from a resource instead of asked for. */
  derived?: string;
}

export interface OperatorSecret {
  variable: string;
  functions: string[];
  description: string;
}

export interface Declaration {
  tables: TableDeclaration[];
  buckets: BucketDeclaration[];
  kmsKeys: KmsKeyDeclaration[];
  settings: {
    local: Record<string, string>;
    deployment: Record<string, DeploymentSetting>;
  };
  operatorSecrets: OperatorSecret[];
  functions: FunctionDeclaration[];
}

export const DECLARATION_PATH = path.join(__dirname, '..', '..', 'stack.json');

export function loadDeclaration(file: string = DECLARATION_PATH): Declaration {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Declaration;
}

/** The `${kind:name}` placeholders in a value, in order. */
export function placeholders(value: string): { kind: string; name: string; text: string }[] {
  const found: { kind: string; name: string; text: string }[] = [];
  for (const match of value.matchAll(/\$\{([a-z]+):([A-Za-z0-9_-]+)\}/g)) {
    found.push({ kind: match[1], name: match[2], text: match[0] });
  }
  return found;
}
