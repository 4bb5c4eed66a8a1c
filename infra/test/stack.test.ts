// Assertions on the synthesized template (aws-cdk-lib/assertions, node's test runner):
// routes, TTL, least privilege, the region guard, cache policies, the bucket's public-access
// block, and that names and environment come from infra/stack.json unchanged.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';

import { buildApp, buildEdge, regionFrom } from '../bin/app';
import { loadDeclaration } from '../lib/declaration';

const declaration = loadDeclaration();

// With COCOA_REAL_ARTIFACTS=1 (scripts/test, after scripts/package) every assertion runs on the
// template of the real arm64 zips, and a missing zip fails instead of being stood in for.
const placeholderArtifacts = process.env.COCOA_REAL_ARTIFACTS === '1' ? 'false' : 'true';

function synth(context: Record<string, string> = {}): Template {
  const app = new App({ context: { placeholderArtifacts, ...context } });
  return Template.fromStack(buildApp(app));
}

const template = synth();
type Resource = { Type: string; Properties: Record<string, any> };
const resources = template.toJSON().Resources as Record<string, Resource>;
const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);

/** The logical id of the function with this declared name. */
function functionId(name: string): string {
  const found = ofType('AWS::Lambda::Function').find(([, r]) => r.Properties.FunctionName === name);
  assert.ok(found, `function ${name} is in the template`);
  return found[0];
}

/** Every logical id a value refers to (Ref / Fn::GetAtt), anywhere inside it. */
function references(value: unknown, found = new Set<string>()): Set<string> {
  if (Array.isArray(value)) {
    value.forEach((v) => references(v, found));
  } else if (value && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) {
      if (key === 'Ref' && typeof inner === 'string') found.add(inner);
      else if (key === 'Fn::GetAtt' && Array.isArray(inner)) found.add(String(inner[0]));
      else references(inner, found);
    }
  }
  return found;
}

function tableId(id: string): string {
  const name = declaration.tables.find((t) => t.id === id)!.name;
  return ofType('AWS::DynamoDB::Table').find(([, r]) => r.Properties.TableName === name)![0];
}

/** The policy statements attached to a function's role. */
function statementsOf(name: string): any[] {
  const role = references(resources[functionId(name)].Properties.Role);
  return ofType('AWS::IAM::Policy')
    .filter(([, p]) => p.Properties.Roles.some((r: unknown) => [...references(r)].some((id) => role.has(id))))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
}

const actionsOf = (name: string) => statementsOf(name).flatMap((s) => [s.Action].flat());

test('every declared route is served by its function; the helpdesk route needs IAM, the rest CloudFront', () => {
  const routes = ofType('AWS::ApiGatewayV2::Route');
  const declared = declaration.functions.flatMap((f) => f.routes.map((r) => ({ route: r, fn: f })));
  assert.equal(routes.length, declared.length);
  for (const { route, fn } of declared) {
    const found = routes.find(([, r]) => r.Properties.RouteKey === route);
    assert.ok(found, `route ${route}`);
    const integration = resources[[...references(found[1].Properties.Target)][0]];
    assert.ok(references(integration.Properties.IntegrationUri).has(functionId(fn.name)), `${route} → ${fn.name}`);
    const iam = fn.helpdeskRoutes?.includes(route) ?? false;
    assert.equal(found[1].Properties.AuthorizationType, iam ? 'AWS_IAM' : 'CUSTOM', route);
    if (!iam) {
      const authorizer = resources[[...references(found[1].Properties.AuthorizerId)][0]];
      assert.deepEqual(authorizer.Properties.IdentitySource, ['$request.header.x-origin-verify'], route);
    }
  }
});

test('guessing routes are throttled harder than the rest; access logs record no source IP', () => {
  const [, stage] = ofType('AWS::ApiGatewayV2::Stage')[0];
  for (const route of ['POST /api/v1/verification', 'PUT /api/v3/diagnosis', 'PUT /api/v2/diagnosis']) {
    assert.equal(stage.Properties.RouteSettings[route].ThrottlingRateLimit, 20, route);
  }
  assert.ok(stage.Properties.DefaultRouteSettings.ThrottlingRateLimit > 20);
  const format = stage.Properties.AccessLogSettings.Format as string;
  assert.ok(format.includes('$context.status'));
  assert.ok(!/sourceIp|userAgent|identity/.test(format), format);
});

test('every table has its TTL attribute and point-in-time recovery, under its declared name', () => {
  const tables = ofType('AWS::DynamoDB::Table');
  assert.equal(tables.length, declaration.tables.length);
  for (const table of declaration.tables) {
    const found = tables.find(([, r]) => r.Properties.TableName === table.name);
    assert.ok(found, table.name);
    assert.deepEqual(found[1].Properties.TimeToLiveSpecification, { AttributeName: table.ttlAttribute, Enabled: true });
    assert.equal(found[1].Properties.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled, true);
  }
});

test('no policy grants * actions, and * resources only where AWS requires them (X-Ray)', () => {
  for (const [id, policy] of ofType('AWS::IAM::Policy')) {
    for (const statement of policy.Properties.PolicyDocument.Statement) {
      const actions = [statement.Action].flat() as string[];
      assert.ok(!actions.some((a) => a === '*' || a.endsWith(':*')), `${id}: ${actions}`);
      if ([statement.Resource].flat().includes('*')) {
        assert.ok(actions.every((a) => a.startsWith('xray:')), `${id}: * resource for ${actions}`);
      }
    }
  }
});

test("each function reaches only its own tables and keys", () => {
  const ownTables: Record<string, string[]> = {
    'submit-keys': ['keys', 'used-tokens'],
    'verify-processing-number': [],
    register: [],
    'publish-exports': ['keys', 'exports'],
    'issue-log-id': ['log-ids'],
    'accept-logs': ['log-ids', 'operation-logs'],
    'accept-event-logs': ['event-logs'],
    'enforce-retention': declaration.tables.map((t) => t.id),
  };
  for (const fn of declaration.functions) {
    const reached = references(statementsOf(fn.name).map((s) => s.Resource));
    for (const table of declaration.tables) {
      assert.equal(reached.has(tableId(table.id)), ownTables[fn.name].includes(table.id), `${fn.name} × ${table.id}`);
    }
  }
  for (const fn of declaration.functions) {
    assert.ok(!actionsOf(fn.name).some((a) => a.includes('*')), `${fn.name}: no wildcard actions`);
  }
  assert.ok(actionsOf('publish-exports').includes('kms:Sign'));
  assert.ok(!actionsOf('publish-exports').includes('kms:Verify'));
  assert.ok(!actionsOf('submit-keys').some((a) => a.startsWith('s3:')));
  assert.deepEqual(
    actionsOf('verify-processing-number').filter((a) => !a.startsWith('xray:')),
    ['kms:GenerateMac'],
  );
});

test('the stack refuses any region but Tokyo and Osaka', () => {
  assert.equal(regionFrom(undefined), 'ap-northeast-1');
  assert.equal(regionFrom('ap-northeast-3'), 'ap-northeast-3');
  assert.throws(() => regionFrom('us-east-1'), /refused/);
  assert.throws(() => synth({ region: 'eu-west-1' }), /refused/);
  const rule = template.toJSON().Rules.JapaneseRegionOnly;
  assert.ok(JSON.stringify(rule).includes('ap-northeast-1') && JSON.stringify(rule).includes('ap-northeast-3'));
});

test('list.json is cached at most 5 minutes; zips as their Cache-Control says, up to a year', () => {
  const [, distribution] = ofType('AWS::CloudFront::Distribution')[0];
  const config = distribution.Properties.DistributionConfig;
  const listBehaviour = config.CacheBehaviors.find((b: any) => b.PathPattern === 'c19r/*/list.json');
  assert.ok(listBehaviour);
  const policy = (ref: unknown) => resources[[...references(ref)][0]].Properties.CachePolicyConfig;
  assert.equal(policy(listBehaviour.CachePolicyId).MaxTTL, 300);
  assert.equal(policy(config.DefaultCacheBehavior.CachePolicyId).MaxTTL, 365 * 86400);
  assert.ok(config.Origins[0].OriginAccessControlId, 'the bucket is reached through origin access control');
});

test('buckets block all public access, are encrypted and versioned', () => {
  for (const [id, bucket] of ofType('AWS::S3::Bucket')) {
    assert.deepEqual(
      bucket.Properties.PublicAccessBlockConfiguration,
      { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      id,
    );
    assert.ok(bucket.Properties.BucketEncryption, id);
    assert.equal(bucket.Properties.VersioningConfiguration.Status, 'Enabled', id);
  }
});

test('functions get the names and variables the local stack uses (one source: infra/stack.json)', () => {
  for (const fn of declaration.functions) {
    const properties = resources[functionId(fn.name)].Properties;
    assert.equal(properties.Runtime, 'provided.al2023');
    assert.deepEqual(properties.Architectures, ['arm64']);
    const secrets = declaration.operatorSecrets.filter((s) => s.functions.includes(fn.name)).map((s) => s.variable);
    const expected = [...Object.keys(fn.environment), ...secrets].sort();
    assert.deepEqual(Object.keys(properties.Environment?.Variables ?? {}).sort(), expected, fn.name);
  }
  assert.equal(ofType('AWS::Lambda::Function').filter(([, r]) => r.Properties.Runtime === 'provided.al2023').length, declaration.functions.length);
});

test("a function's measured sizing in infra/stack.json is what it is deployed with", () => {
  const sized = declaration.functions.filter((f) => f.sizing);
  assert.ok(sized.some((f) => f.name === 'publish-exports'), 'the exporter is sized from its bench');
  for (const fn of sized) {
    const properties = resources[functionId(fn.name)].Properties;
    assert.equal(properties.MemorySize, fn.sizing!.memoryMb, fn.name);
    assert.equal(properties.Timeout, fn.sizing!.timeoutSeconds, fn.name);
    assert.ok(fn.sizing!.timeoutSeconds <= 900, 'within Lambda\'s 15 minutes');
  }
});

test('scheduled functions run on their declared schedule, with a dead-letter queue and an alarm on it', () => {
  for (const fn of declaration.functions.filter((f) => f.schedule)) {
    const rule = ofType('AWS::Events::Rule').find(([, r]) => references(r.Properties.Targets).has(functionId(fn.name)));
    assert.ok(rule, fn.name);
    assert.equal(rule[1].Properties.ScheduleExpression, fn.schedule);
    const properties = resources[functionId(fn.name)].Properties;
    assert.ok(properties.DeadLetterConfig, fn.name);
    const queue = [...references(properties.DeadLetterConfig)][0];
    assert.ok(
      ofType('AWS::CloudWatch::Alarm').some(([, a]) => references(a.Properties.Dimensions).has(queue)),
      `${fn.name}: DLQ depth alarm`,
    );
  }
  for (const alarm of ['ExporterNoProgress', 'ExporterErrors', 'Api5xx', 'HersysFailureRate', 'VerificationGuessing']) {
    assert.ok(Object.keys(resources).some((id) => id.startsWith(alarm)), alarm);
  }
});

test('the API is reached through CloudFront with the web ACL, which rate-limits guessing per address', () => {
  const api = ofType('AWS::CloudFront::Distribution').find(([, d]) =>
    JSON.stringify(d.Properties.DistributionConfig.Origins).includes('execute-api'),
  );
  assert.ok(api, 'a distribution in front of the API');
  const config = api[1].Properties.DistributionConfig;
  assert.deepEqual(config.WebACLId, { Ref: 'apiWebAclArn' });
  assert.equal(config.Origins[0].OriginCustomHeaders[0].HeaderName, 'x-origin-verify');
  assert.equal(config.Logging, undefined, 'no viewer logs: they hold IP addresses');

  const app = new App({ context: { placeholderArtifacts: 'true' } });
  const edge = Template.fromStack(buildEdge(app));
  const [acl] = Object.values(edge.findResources('AWS::WAFv2::WebACL')) as Resource[];
  assert.equal(acl.Properties.Scope, 'CLOUDFRONT');
  const guessing = acl.Properties.Rules.find((r: any) => r.Name === 'guessing-routes-per-address');
  assert.equal(guessing.Statement.RateBasedStatement.Limit, 100);
  assert.equal(guessing.Statement.RateBasedStatement.AggregateKeyType, 'IP');
  const paths = guessing.Statement.RateBasedStatement.ScopeDownStatement.OrStatement.Statements.map(
    (s: any) => s.ByteMatchStatement.SearchString,
  );
  assert.deepEqual(paths.sort(), ['/api/v1/verification', '/api/v2/diagnosis', '/api/v3/diagnosis']);
  assert.ok(acl.Properties.Rules.every((r: any) => r.VisibilityConfig.SampledRequestsEnabled === false));
});

test("the exposure configuration is deployed from the repository's static/ folder, never pruning", () => {
  const [deployment] = ofType('Custom::CDKBucketDeployment');
  assert.ok(deployment, 'a bucket deployment');
  const [exportsBucket] = ofType('AWS::S3::Bucket').filter(([, b]) =>
    (b.Properties.LifecycleConfiguration?.Rules ?? []).some((r: any) => r.Id === 'export-files'),
  );
  assert.ok(references(deployment[1].Properties.DestinationBucketName).has(exportsBucket[0]));
  assert.equal(deployment[1].Properties.Prune, false, 'published export files are never removed by a deploy');
});

test('the helpdesk policy reads, lists and deletes logs and issues IDs, and nothing else', () => {
  const [, policy] = ofType('AWS::IAM::ManagedPolicy').find(([, p]) => p.Properties.ManagedPolicyName === 'cocoa-helpdesk')!;
  const statements = policy.Properties.PolicyDocument.Statement as any[];
  const actions = statements.flatMap((s) => [s.Action].flat()).sort();
  assert.deepEqual(actions, [
    'dynamodb:DeleteItem',
    'dynamodb:GetItem',
    'dynamodb:Query',
    'dynamodb:Scan',
    'execute-api:Invoke',
    'lambda:InvokeFunction',
  ]);
  const reached = references(statements.map((s) => s.Resource));
  for (const table of declaration.tables) {
    assert.equal(reached.has(tableId(table.id)), ['operation-logs', 'event-logs'].includes(table.id), table.id);
  }
});
