// What each function may do: exactly the AWS calls its adapters make (shared/src/adapters), on
// exactly its own resources (ids from infra/stack.json). Nothing here is `*`.

export type Grant =
  | { kind: 'table'; id: string; actions: string[]; index?: string }
  | { kind: 'kms'; id: string; actions: string[] }
  | { kind: 'function'; id: string; actions: string[] }
  | { kind: 'bucket'; actions: string[]; objects?: string };

export const PERMISSIONS: Record<string, Grant[]> = {
  // dynamo_keys (PutItem), dynamo_tokens (PutItem), kms_mac (VerifyMac), lambda_verifier (Invoke).
  'submit-keys': [
    { kind: 'table', id: 'keys', actions: ['dynamodb:PutItem'] },
    { kind: 'table', id: 'used-tokens', actions: ['dynamodb:PutItem'] },
    { kind: 'kms', id: 'mac', actions: ['kms:VerifyMac'] },
    { kind: 'function', id: 'verify-processing-number', actions: ['lambda:InvokeFunction'] },
  ],
  // HER-SYS is reached over HTTPS with its own credentials; tokens carry a KMS MAC.
  'verify-processing-number': [{ kind: 'kms', id: 'mac', actions: ['kms:GenerateMac'] }],
  register: [],
  // dynamo_exports: the keys table only through its by-release index; the ledger; S3 puts and
  // deletes under c19r/; signing (never Verify: the public key checks signatures).
  'publish-exports': [
    { kind: 'table', id: 'keys', actions: ['dynamodb:Query'], index: 'by-release' },
    {
      kind: 'table',
      id: 'exports',
      actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query', 'dynamodb:DeleteItem'],
    },
    { kind: 'bucket', actions: ['s3:PutObject', 's3:DeleteObject'], objects: 'c19r/*' },
    { kind: 'kms', id: 'export-signing', actions: ['kms:Sign', 'kms:GetPublicKey'] },
  ],
  'issue-log-id': [
    { kind: 'table', id: 'log-ids', actions: ['dynamodb:PutItem'] },
    { kind: 'kms', id: 'mac', actions: ['kms:GenerateMac'] },
  ],
  // dynamo_logs: the upload transaction puts the meta item and updates the log ID (or puts the
  // used grant's item); chunks are put, read back, and removed when an upload surely failed.
  'accept-logs': [
    {
      kind: 'table',
      id: 'log-ids',
      actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
    },
    {
      kind: 'table',
      id: 'operation-logs',
      actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:DeleteItem'],
    },
    { kind: 'kms', id: 'mac', actions: ['kms:GenerateMac', 'kms:VerifyMac'] },
  ],
  'accept-event-logs': [{ kind: 'table', id: 'event-logs', actions: ['dynamodb:PutItem'] }],
  // retention: every table (describe, scan, batch delete) and old export zips.
  'enforce-retention': [
    ...['keys', 'used-tokens', 'exports', 'log-ids', 'operation-logs', 'event-logs'].map(
      (id): Grant => ({
        kind: 'table',
        id,
        actions: ['dynamodb:DescribeTable', 'dynamodb:Scan', 'dynamodb:BatchWriteItem', 'dynamodb:DeleteItem'],
      }),
    ),
    { kind: 'bucket', actions: ['s3:ListBucket'] },
    { kind: 'bucket', actions: ['s3:DeleteObject'], objects: 'c19r/*' },
  ],
};
