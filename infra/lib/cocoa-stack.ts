// The whole COCOA backend in one stack, built from infra/stack.json (the declaration the local
// stack uses too): tables, the exports bucket behind CloudFront, KMS keys, every function with
// its routes, schedules and environment, least-privilege policies, and alarms.

import * as fs from 'fs';
import * as path from 'path';

import {
  Aspects,
  Aws,
  CfnOutput,
  CfnResource,
  CfnParameter,
  CfnRule,
  Duration,
  Fn,
  RemovalPolicy,
  Stack,
  StackProps,
} from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import {
  HttpIamAuthorizer,
  HttpLambdaAuthorizer,
  HttpLambdaResponseType,
} from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3deploy from 'aws-cdk-lib/aws-s3-deployment';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

import { Declaration, FunctionDeclaration, placeholders } from './declaration';
import { PERMISSIONS, Grant } from './permissions';

/** The regions the service may run in (seed 000 §2.4: 国内のリージョン). */
export const ALLOWED_REGIONS = ['ap-northeast-1', 'ap-northeast-3'];

/** Routes whose every request can be a processing-number guess (docs/security.md). */
export const GUESSING_ROUTES = ['POST /api/v1/verification', 'PUT /api/v3/diagnosis', 'PUT /api/v2/diagnosis'];
export const GUESSING_ROUTE_LIMIT = { rateLimit: 20, burstLimit: 40 };
export const DEFAULT_ROUTE_LIMIT = { rateLimit: 200, burstLimit: 400 };

export interface CocoaStackProps extends StackProps {
  declaration: Declaration;
  /** Where `cargo lambda build --release --arm64 --output-format zip` put the artefacts. */
  artifactsDir: string;
  /** Synthesize with a placeholder for missing artefacts (tests, offline synth); never deploy. */
  placeholderArtifacts: boolean;
}

/**
 * A checkov finding this design accepts, with the reason, kept next to the resource (checkov
 * reads `Metadata.checkov.skip`). Every reason is reviewed like code.
 */
export function acceptFinding(construct: Construct, findings: [string, string][]) {
  const resource = (construct instanceof CfnResource ? construct : construct.node.defaultChild) as CfnResource;
  const existing = (resource.getMetadata('checkov') as { skip: { id: string; comment: string }[] } | undefined)?.skip ?? [];
  resource.addMetadata('checkov', {
    skip: [...existing, ...findings.map(([id, comment]) => ({ id, comment }))],
  });
}

const REASONS = {
  tableCmk: 'Encrypted at rest with the AWS-managed key; who may read is decided by IAM (one table per function), and a customer key would add a KMS call and its cost to every request without changing that.',
  logGroupCmk: 'Log lines are an allow-list of fields with no personal data (the privacy sweep in scripts/test proves it); CloudWatch encrypts them at rest.',
  noVpc: 'The functions call only AWS APIs and HER-SYS (mutual TLS) over TLS and hold no VPC resources; a VPC would add NAT cost and cold-start time and protect nothing.',
  envCmk: 'Encrypted at rest with the Lambda-managed key; the secrets among the variables come from NoEcho parameters. Secrets Manager is the next hardening step (README deploy guide).',
  defaultCertificate:
    "The default *.cloudfront.net certificate's policy is fixed by AWS; an operator serving the app's own domain sets its ACM certificate and TLSv1.2_2021 (infra/README.md).",
  noViewerLogs: 'CloudFront access logs record every viewer IP address, which this service never keeps (seeds 000 and 001); request counts come from CloudWatch metrics.',
  syncDlq: 'Invoked synchronously by API Gateway (or Lambda Invoke): a failure is answered to the caller, who retries; a dead-letter queue applies only to asynchronous invocations.',
};

/** The regions the exporter publishes (its SUPPORTED_REGIONS in the declaration). */
function exportRegions(declaration: Declaration): string[] {
  const exporter = declaration.functions.find((f) => f.name === 'publish-exports');
  return (exporter?.environment.SUPPORTED_REGIONS ?? '440')
    .split(/[,;:]/)
    .map((r) => r.trim())
    .filter((r) => r.length > 0);
}

/** The header CloudFront adds and the API requires (`OriginVerifier`). */
export const ORIGIN_HEADER = 'x-origin-verify';

/** The authorizer's code: a constant-time comparison of the header with the shared secret. */
const ORIGIN_VERIFIER_SOURCE = `
const crypto = require('crypto');
const expected = Buffer.from(process.env.ORIGIN_VERIFY || '');
exports.handler = async (event) => {
  const given = Buffer.from((event.headers && event.headers['${'x-origin-verify'}']) || '');
  return { isAuthorized: expected.length > 0 && given.length === expected.length && crypto.timingSafeEqual(given, expected) };
};
`;

/** Per-function tuning the declaration leaves to the deployment. */
const TUNING: Record<string, { memoryMb: number; timeout: Duration; reserved: number }> = {
  'submit-keys': { memoryMb: 256, timeout: Duration.seconds(15), reserved: 50 },
  'verify-processing-number': { memoryMb: 256, timeout: Duration.seconds(10), reserved: 10 },
  register: { memoryMb: 128, timeout: Duration.seconds(3), reserved: 10 },
  // One run at a time: the exporter's ledger makes a second run harmless, but never useful.
  // Its memory and timeout are measured: infra/stack.json's `sizing` replaces these.
  'publish-exports': { memoryMb: 1024, timeout: Duration.minutes(10), reserved: 1 },
  'issue-log-id': { memoryMb: 256, timeout: Duration.seconds(10), reserved: 10 },
  'accept-logs': { memoryMb: 512, timeout: Duration.seconds(30), reserved: 10 },
  'accept-event-logs': { memoryMb: 256, timeout: Duration.seconds(15), reserved: 50 },
  'enforce-retention': { memoryMb: 512, timeout: Duration.minutes(15), reserved: 1 },
};

export class CocoaStack extends Stack {
  readonly functions = new Map<string, lambda.Function>();
  readonly tables = new Map<string, dynamodb.Table>();
  readonly keys = new Map<string, kms.Key>();
  readonly bucket: s3.Bucket;
  readonly distribution: cloudfront.Distribution;
  readonly api: apigwv2.HttpApi;
  readonly apiDistribution: cloudfront.Distribution;

  constructor(scope: Construct, id: string, props: CocoaStackProps) {
    super(scope, id, props);
    const declaration = props.declaration;

    // Refuse, in the template itself, any region but Japan's.
    new CfnRule(this, 'JapaneseRegionOnly', {
      assertions: [
        {
          assert: Fn.conditionContains(ALLOWED_REGIONS, Aws.REGION),
          assertDescription: `This stack runs only in ${ALLOWED_REGIONS.join(' or ')} (seed 000 §2.4).`,
        },
      ],
    });

    for (const table of declaration.tables) {
      const created = new dynamodb.Table(this, `Table-${table.id}`, {
        tableName: table.name,
        partitionKey: { name: table.partitionKey, type: dynamodb.AttributeType.STRING },
        sortKey: table.sortKey ? { name: table.sortKey, type: dynamodb.AttributeType.STRING } : undefined,
        billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
        timeToLiveAttribute: table.ttlAttribute,
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        encryption: dynamodb.TableEncryption.AWS_MANAGED,
        removalPolicy: RemovalPolicy.RETAIN,
      });
      for (const index of table.indexes ?? []) {
        created.addGlobalSecondaryIndex({
          indexName: index.name,
          partitionKey: { name: index.partitionKey, type: dynamodb.AttributeType.STRING },
          sortKey: index.sortKey ? { name: index.sortKey, type: dynamodb.AttributeType.STRING } : undefined,
          projectionType: dynamodb.ProjectionType.ALL,
        });
      }
      acceptFinding(created, [['CKV_AWS_119', REASONS.tableCmk]]);
      this.tables.set(table.id, created);
    }

    for (const key of declaration.kmsKeys) {
      const created = new kms.Key(this, `Key-${key.id}`, {
        keySpec: key.keySpec as kms.KeySpec,
        keyUsage: key.keyUsage as kms.KeyUsage,
        alias: key.alias,
        description: `COCOA ${key.id}`,
        removalPolicy: RemovalPolicy.RETAIN,
      });
      if (key.keySpec === 'HMAC_256') {
        acceptFinding(created, [
          ['CKV_AWS_7', 'KMS cannot rotate HMAC keys automatically; a rotation is a new key and a new MAC_KEY_ID, planned with the tokens and log IDs it invalidates (a day at most).'],
        ]);
      }
      this.keys.set(key.id, created);
    }

    const exportsDeclaration = declaration.buckets[0];
    const accessLogs = new s3.Bucket(this, 'AccessLogs', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.OBJECT_WRITER,
      versioned: true,
      lifecycleRules: [{ expiration: Duration.days(90), noncurrentVersionExpiration: Duration.days(1) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    acceptFinding(accessLogs, [['CKV_AWS_18', 'This is the access-log bucket itself: logging it into itself would loop.']]);
    this.bucket = new s3.Bucket(this, 'Exports', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      versioned: true,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'exports/',
      // Export files leave list.json after 14 days; the bucket forgets them a day later, and
      // old versions of list.json after a day.
      lifecycleRules: [
        ...exportRegions(declaration).map((region) => ({
          id: region === exportRegions(declaration)[0] ? 'export-files' : `export-files-${region}`,
          prefix: `${exportsDeclaration.publicPrefix ?? ''}${region}/`,
          expiration: Duration.days(15),
          noncurrentVersionExpiration: Duration.days(1),
        })),
        { id: 'old-versions', noncurrentVersionExpiration: Duration.days(1) },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // Zips never change once published (cached a year, as the exporter's Cache-Control says);
    // list.json changes every run (5 minutes at most).
    const immutable = new cloudfront.CachePolicy(this, 'ImmutableExports', {
      comment: 'export zips and exposure configuration: cached as their Cache-Control says, up to a year',
      minTtl: Duration.seconds(0),
      defaultTtl: Duration.days(1),
      maxTtl: Duration.days(365),
      enableAcceptEncodingGzip: true,
      enableAcceptEncodingBrotli: true,
    });
    const shortLived = new cloudfront.CachePolicy(this, 'ListJson', {
      comment: 'list.json: at most 5 minutes',
      minTtl: Duration.seconds(0),
      defaultTtl: Duration.minutes(5),
      maxTtl: Duration.minutes(5),
      enableAcceptEncodingGzip: true,
      enableAcceptEncodingBrotli: true,
    });
    const origin = origins.S3BucketOrigin.withOriginAccessControl(this.bucket);
    this.distribution = new cloudfront.Distribution(this, 'Downloads', {
      comment: 'COCOA downloads: export zips, list.json, exposure configuration',
      defaultBehavior: {
        origin,
        cachePolicy: immutable,
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD,
      },
      additionalBehaviors: {
        'c19r/*/list.json': {
          origin,
          cachePolicy: shortLived,
          viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
          allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD,
        },
      },
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
      priceClass: cloudfront.PriceClass.PRICE_CLASS_200,
      // No CloudFront access logs: every line would hold a phone's IP address.
      enableLogging: false,
    });

    // The exposure configuration the app downloads, from the repository's static/ folder (the
    // health authority's files; static/c19r/exposure_configuration/README.md).
    new s3deploy.BucketDeployment(this, 'ExposureConfiguration', {
      sources: [s3deploy.Source.asset(path.join(__dirname, '..', '..', '..', 'static'), { exclude: ['**/*.md'] })],
      destinationBucket: this.bucket,
      prune: false,
      cacheControl: [s3deploy.CacheControl.fromString('public, max-age=300')],
      contentType: 'application/json',
    });

    acceptFinding(this.distribution, [
      ['CKV_AWS_68', 'Downloads are public, static, cached files (export zips, list.json): a flood costs CloudFront bandwidth, not the service. Rate limits guard the API (docs/security.md).'],
      ['CKV_AWS_174', REASONS.defaultCertificate],
      ['CKV_AWS_86', REASONS.noViewerLogs],
    ]);

    const settings = this.settings(declaration);
    const secrets = new Map<string, CfnParameter>();
    for (const secret of declaration.operatorSecrets) {
      secrets.set(
        secret.variable,
        new CfnParameter(this, secret.variable.replace(/_/g, ''), {
          type: 'String',
          default: '',
          noEcho: true,
          description: secret.description,
        }),
      );
    }

    // Function names are the declaration's: the local stack uses the same.
    for (const fn of declaration.functions) {
      this.functions.set(fn.name, this.lambdaFunction(fn, props));
    }
    for (const fn of declaration.functions) {
      const created = this.functions.get(fn.name)!;
      for (const [name, value] of Object.entries(fn.environment)) {
        created.addEnvironment(name, this.resolve_(value, settings));
      }
      for (const secret of declaration.operatorSecrets.filter((s) => s.functions.includes(fn.name))) {
        created.addEnvironment(secret.variable, secrets.get(secret.variable)!.valueAsString);
      }
      this.grant(created, PERMISSIONS[fn.name] ?? []);
    }

    const originSecret = new secretsmanager.Secret(this, 'OriginVerify', {
      description: 'CloudFront → API: proves a request came through the web ACL',
      generateSecretString: { excludePunctuation: true, passwordLength: 40 },
    });
    acceptFinding(originSecret, [
      ['CKV_AWS_149', 'A random shared value between CloudFront and the API, not data: the AWS-managed key suffices.'],
    ]);
    this.api = this.httpApi(declaration, originSecret);
    this.apiDistribution = this.apiEdge(originSecret);
    this.schedules(declaration);
    this.alarms();

    // What an operator's role needs for the helpdesk command (tools/helpdesk): read, list and
    // delete logs, read survey answers, issue log IDs. Attach it to the helpdesk's own roles.
    const logsTable = this.tables.get('operation-logs')!;
    new iam.ManagedPolicy(this, 'HelpdeskPolicy', {
      managedPolicyName: 'cocoa-helpdesk',
      description: 'COCOA helpdesk command: get, list and delete consented logs; survey report; issue log IDs',
      statements: [
        new iam.PolicyStatement({
          actions: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:DeleteItem'],
          resources: [logsTable.tableArn, `${logsTable.tableArn}/index/by-received-day`],
        }),
        new iam.PolicyStatement({
          actions: ['dynamodb:Scan'],
          resources: [this.tables.get('event-logs')!.tableArn],
        }),
        new iam.PolicyStatement({
          actions: ['lambda:InvokeFunction'],
          resources: [this.functions.get('issue-log-id')!.functionArn],
        }),
        new iam.PolicyStatement({
          actions: ['execute-api:Invoke'],
          resources: [
            Stack.of(this).formatArn({
              service: 'execute-api',
              resource: this.api.apiId,
              resourceName: '$default/POST/api/v1/helpdesk/logs',
            }),
          ],
        }),
      ],
    });

    // CDK's own helper functions (the configuration deployment's copier): same accepted findings.
    Aspects.of(this).add({
      visit: (node) => {
        if (node instanceof lambda.CfnFunction && !this.isOwnFunction(node)) {
          acceptFinding(node, [
            ['CKV_AWS_117', REASONS.noVpc],
            ['CKV_AWS_116', 'A deploy-time helper CDK runs once per deployment through CloudFormation, which reports its failure.'],
            ['CKV_AWS_115', 'A deploy-time helper CDK runs once per deployment.'],
            ['CKV_AWS_173', REASONS.envCmk],
          ]);
        }
      },
    });

    new CfnOutput(this, 'ApiUrl', {
      value: `https://${this.apiDistribution.distributionDomainName}`,
      description: 'the app\'s API base (through CloudFront and the web ACL)',
    });
    new CfnOutput(this, 'HelpdeskApiUrl', {
      value: this.api.apiEndpoint,
      description: 'the IAM-authorised helpdesk route, called with SigV4 directly',
    });
    new CfnOutput(this, 'DownloadUrl', {
      value: `https://${this.distribution.distributionDomainName}`,
      description: 'cdnUrlBase for the app',
    });
  }

  private isOwnFunction(resource: lambda.CfnFunction): boolean {
    const own = [...this.functions.values()].map((f) => f.node.defaultChild);
    return own.includes(resource) || resource.node.path.includes('OriginVerifier');
  }

  /** Deployment settings: CloudFormation parameters (secrets NoEcho), or derived from resources. */
  private settings(declaration: Declaration): Map<string, string> {
    const values = new Map<string, string>();
    for (const [name, setting] of Object.entries(declaration.settings.deployment)) {
      if (setting.derived === 'cloudfront') {
        values.set(name, `https://${this.distribution.distributionDomainName}`);
        continue;
      }
      const parameter = new CfnParameter(this, name, {
        type: 'String',
        description: setting.description,
        default: setting.default,
        noEcho: setting.secret ?? false,
        allowedValues: setting.allowed,
        minLength: 1,
      });
      values.set(name, parameter.valueAsString);
    }
    return values;
  }

  /** A declared value with its placeholders replaced by this deployment's names. */
  private resolve_(value: string, settings: Map<string, string>): string {
    const found = placeholders(value);
    if (found.length === 0) {
      return value;
    }
    const parts: string[] = [];
    let rest = value;
    for (const placeholder of found) {
      const at = rest.indexOf(placeholder.text);
      parts.push(rest.slice(0, at));
      parts.push(this.placeholderValue(placeholder.kind, placeholder.name, settings));
      rest = rest.slice(at + placeholder.text.length);
    }
    parts.push(rest);
    return Fn.join('', parts);
  }

  private placeholderValue(kind: string, name: string, settings: Map<string, string>): string {
    const missing = () => {
      throw new Error(`infra/stack.json: unknown placeholder \${${kind}:${name}}`);
    };
    switch (kind) {
      case 'table':
        return this.tables.get(name)?.tableName ?? missing();
      case 'bucket':
        return this.bucket.bucketName;
      case 'kms':
        return this.keys.get(name)?.keyArn ?? missing();
      case 'function':
        return this.functions.get(name)?.functionName ?? missing();
      case 'setting':
        return settings.get(name) ?? missing();
      default:
        return missing();
    }
  }

  private lambdaFunction(fn: FunctionDeclaration, props: CocoaStackProps): lambda.Function {
    const artefact = path.join(props.artifactsDir, fn.name, 'bootstrap.zip');
    let code: lambda.Code;
    if (fs.existsSync(artefact)) {
      code = lambda.Code.fromAsset(artefact);
    } else if (props.placeholderArtifacts) {
      code = lambda.Code.fromAsset(path.join(__dirname, '..', '..', 'placeholder'));
    } else {
      throw new Error(
        `${artefact} is missing: run scripts/package first (the arm64 release zips) ` +
          '(or synthesize with -c placeholderArtifacts=true, never to deploy)',
      );
    }
    const tuned = TUNING[fn.name] ?? { memoryMb: 256, timeout: Duration.seconds(10), reserved: 10 };
    // A declared sizing (measured, infra/stack.json) wins over the deployment's guess.
    const tuning = fn.sizing
      ? { ...tuned, memoryMb: fn.sizing.memoryMb, timeout: Duration.seconds(fn.sizing.timeoutSeconds) }
      : tuned;
    const logGroup = new logs.LogGroup(this, `Logs-${fn.name}`, {
      logGroupName: `/aws/lambda/${fn.name}`,
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    acceptFinding(logGroup, [['CKV_AWS_158', REASONS.logGroupCmk]]);
    const scheduled = fn.schedule !== undefined;
    const created = new lambda.Function(this, `Fn-${fn.name}`, {
      functionName: fn.name,
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: lambda.Architecture.ARM_64,
      handler: 'bootstrap',
      code,
      memorySize: tuning.memoryMb,
      timeout: tuning.timeout,
      reservedConcurrentExecutions: tuning.reserved,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      applicationLogLevelV2: lambda.ApplicationLogLevel.INFO,
      systemLogLevelV2: lambda.SystemLogLevel.WARN,
      tracing: lambda.Tracing.ACTIVE,
      deadLetterQueue: scheduled
        ? new sqs.Queue(this, `DeadLetters-${fn.name}`, {
            encryption: sqs.QueueEncryption.KMS_MANAGED,
            enforceSSL: true,
            retentionPeriod: Duration.days(14),
          })
        : undefined,
      retryAttempts: scheduled ? 2 : undefined,
      description: `COCOA ${fn.name}`,
    });
    acceptFinding(created, [
      ['CKV_AWS_117', REASONS.noVpc],
      ['CKV_AWS_173', REASONS.envCmk],
      ...(scheduled ? [] : [['CKV_AWS_116', REASONS.syncDlq] as [string, string]]),
    ]);
    return created;
  }

  /** Only the actions each function's adapters call, on only its own resources. */
  private grant(fn: lambda.Function, grants: Grant[]) {
    for (const grant of grants) {
      const resources: string[] = [];
      switch (grant.kind) {
        case 'table': {
          const table = this.tables.get(grant.id)!;
          resources.push(table.tableArn);
          if (grant.index) {
            resources.push(`${table.tableArn}/index/${grant.index}`);
          }
          break;
        }
        case 'kms':
          resources.push(this.keys.get(grant.id)!.keyArn);
          break;
        case 'function':
          resources.push(this.functions.get(grant.id)!.functionArn);
          break;
        case 'bucket':
          resources.push(grant.objects ? this.bucket.arnForObjects(grant.objects) : this.bucket.bucketArn);
          break;
      }
      fn.addToRolePolicy(new iam.PolicyStatement({ actions: grant.actions, resources }));
    }
  }

  private httpApi(declaration: Declaration, originSecret: secretsmanager.Secret): apigwv2.HttpApi {
    const api = new apigwv2.HttpApi(this, 'Api', {
      apiName: 'cocoa',
      description: 'COCOA backend (the app wire contract)',
      createDefaultStage: true,
    });
    const iamAuthorizer = new HttpIamAuthorizer();
    // Requests that did not come through CloudFront (and so the web ACL) lack the origin header:
    // API Gateway refuses them without calling anything; the answer for the header's value is
    // cached an hour, so the check costs nothing per request.
    const verifier = new lambda.Function(this, 'OriginVerifier', {
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      handler: 'index.handler',
      code: lambda.Code.fromInline(ORIGIN_VERIFIER_SOURCE),
      environment: { ORIGIN_VERIFY: originSecret.secretValue.unsafeUnwrap() },
      memorySize: 128,
      timeout: Duration.seconds(3),
      reservedConcurrentExecutions: 5,
      logGroup: new logs.LogGroup(this, 'Logs-origin-verifier', {
        retention: logs.RetentionDays.ONE_MONTH,
        removalPolicy: RemovalPolicy.DESTROY,
      }),
      description: 'COCOA: admits API requests that came through CloudFront',
    });
    acceptFinding(verifier, [
      ['CKV_AWS_117', REASONS.noVpc],
      ['CKV_AWS_173', REASONS.envCmk],
      ['CKV_AWS_116', REASONS.syncDlq],
    ]);
    acceptFinding(verifier.logGroup, [['CKV_AWS_158', REASONS.logGroupCmk]]);
    const throughCloudFront = new HttpLambdaAuthorizer('ThroughCloudFront', verifier, {
      responseTypes: [HttpLambdaResponseType.SIMPLE],
      identitySource: [`$request.header.${ORIGIN_HEADER}`],
      resultsCacheTtl: Duration.hours(1),
    });
    for (const fn of declaration.functions) {
      if (fn.routes.length === 0) {
        continue;
      }
      const integration = new HttpLambdaIntegration(`Integration-${fn.name}`, this.functions.get(fn.name)!);
      for (const route of fn.routes) {
        const [method, routePath] = route.split(' ');
        api.addRoutes({
          path: routePath,
          methods: [method as apigwv2.HttpMethod],
          integration,
          authorizer: fn.helpdeskRoutes?.includes(route) ? iamAuthorizer : throughCloudFront,
        });
      }
    }
    const accessLogs = new logs.LogGroup(this, 'ApiAccessLogs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    acceptFinding(accessLogs, [['CKV_AWS_158', REASONS.logGroupCmk]]);
    const stage = api.defaultStage!.node.defaultChild as apigwv2.CfnStage;
    stage.defaultRouteSettings = {
      throttlingRateLimit: DEFAULT_ROUTE_LIMIT.rateLimit,
      throttlingBurstLimit: DEFAULT_ROUTE_LIMIT.burstLimit,
    };
    stage.routeSettings = Object.fromEntries(
      GUESSING_ROUTES.map((route) => [
        route,
        // RouteSettings is free-form JSON to CDK: CloudFormation's own (capitalised) names.
        { ThrottlingRateLimit: GUESSING_ROUTE_LIMIT.rateLimit, ThrottlingBurstLimit: GUESSING_ROUTE_LIMIT.burstLimit },
      ]),
    );
    // What a request did, never who sent it: no $context.identity.sourceIp, no user agent.
    stage.accessLogSettings = {
      destinationArn: accessLogs.logGroupArn,
      format: JSON.stringify({
        requestId: '$context.requestId',
        routeKey: '$context.routeKey',
        status: '$context.status',
        responseLength: '$context.responseLength',
        integrationLatency: '$context.integrationLatency',
        integrationError: '$context.integrationErrorMessage',
        requestTime: '$context.requestTimeEpoch',
      }),
    };
    return api;
  }

  /** The app's way in: CloudFront, with the us-east-1 web ACL (CocoaEdge), in front of the API. */
  private apiEdge(originSecret: secretsmanager.Secret): cloudfront.Distribution {
    const webAcl = new CfnParameter(this, 'apiWebAclArn', {
      type: 'String',
      description: 'ARN of the CocoaEdge stack\'s web ACL (output ApiWebAclArn; us-east-1)',
      allowedPattern: '^arn:aws:wafv2:us-east-1:[0-9]{12}:global/webacl/.+$',
    });
    const distribution = new cloudfront.Distribution(this, 'ApiEdge', {
      comment: 'COCOA API: the web ACL in front of the HTTP API',
      defaultBehavior: {
        origin: new origins.HttpOrigin(`${this.api.apiId}.execute-api.${Aws.REGION}.${Aws.URL_SUFFIX}`, {
          protocolPolicy: cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
          customHeaders: { [ORIGIN_HEADER]: originSecret.secretValue.unsafeUnwrap() },
        }),
        cachePolicy: cloudfront.CachePolicy.CACHING_DISABLED,
        originRequestPolicy: cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
        allowedMethods: cloudfront.AllowedMethods.ALLOW_ALL,
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
      },
      webAclId: webAcl.valueAsString,
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
      priceClass: cloudfront.PriceClass.PRICE_CLASS_200,
      enableLogging: false,
    });
    acceptFinding(distribution, [
      ['CKV_AWS_174', REASONS.defaultCertificate],
      ['CKV_AWS_86', REASONS.noViewerLogs],
    ]);
    return distribution;
  }

  private schedules(declaration: Declaration) {
    for (const fn of declaration.functions.filter((f) => f.schedule)) {
      new events.Rule(this, `Schedule-${fn.name}`, {
        schedule: events.Schedule.expression(fn.schedule!),
        description: `COCOA ${fn.name}`,
        targets: [
          new targets.LambdaFunction(this.functions.get(fn.name)!, {
            retryAttempts: 2,
            deadLetterQueue: new sqs.Queue(this, `ScheduleDlq-${fn.name}`, {
              encryption: sqs.QueueEncryption.KMS_MANAGED,
              enforceSSL: true,
              retentionPeriod: Duration.days(14),
            }),
          }),
        ],
      });
    }
  }

  private alarms() {
    const alarm = (id: string, metric: cloudwatch.IMetric, threshold: number, description: string, periods = 1) =>
      new cloudwatch.Alarm(this, id, {
        metric,
        threshold,
        evaluationPeriods: periods,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
    const exporter = this.functions.get('publish-exports')!;
    new cloudwatch.Alarm(this, 'ExporterNoProgress', {
      metric: exporter.metricInvocations({ period: Duration.hours(4), statistic: 'Sum' }),
      threshold: 1,
      evaluationPeriods: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      alarmDescription: 'publish-exports has not run for two schedule periods: phones get no new keys',
    });
    alarm(
      'ExporterErrors',
      exporter.metricErrors({ period: Duration.hours(4), statistic: 'Sum' }),
      1,
      'publish-exports failed in two consecutive periods: no progress',
      2,
    );
    alarm(
      'Api5xx',
      new cloudwatch.Metric({
        namespace: 'AWS/ApiGateway',
        metricName: '5xx',
        dimensionsMap: { ApiId: this.api.apiId },
        period: Duration.minutes(5),
        statistic: 'Sum',
      }),
      20,
      'more than 20 server errors in 5 minutes',
    );
    // HER-SYS failure rate: verifications answered 503 (HER-SYS failing, slow or down) as a
    // share of the verifier's invocations, over 5 minutes, two periods running.
    const verifier = this.functions.get('verify-processing-number')!;
    new cloudwatch.Alarm(this, 'HersysFailureRate', {
      metric: new cloudwatch.MathExpression({
        expression: 'IF(calls > 0, 100 * FILL(failures, 0) / calls, 0)',
        usingMetrics: {
          failures: new cloudwatch.Metric({
            namespace: 'COCOA',
            metricName: 'VerificationFailures',
            dimensionsMap: { Function: 'verify-processing-number', Outcome: 'verification_unavailable' },
            statistic: 'Sum',
          }),
          calls: verifier.metricInvocations({ statistic: 'Sum' }),
        },
        period: Duration.minutes(5),
        label: 'HER-SYS failures (% of verifications)',
      }),
      threshold: 20,
      evaluationPeriods: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: 'HER-SYS failing or slow for 20% or more of verifications for 10 minutes',
    });
    alarm(
      'VerificationGuessing',
      new cloudwatch.Metric({
        namespace: 'COCOA',
        metricName: 'VerificationFailures',
        dimensionsMap: { Function: 'verify-processing-number', Outcome: 'verification_refused' },
        period: Duration.minutes(5),
        statistic: 'Sum',
      }),
      100,
      'more than 100 refused processing numbers in 5 minutes: guessing (docs/security.md)',
    );
    for (const [name, fn] of this.functions) {
      if (fn.deadLetterQueue) {
        alarm(
          `Dlq-${name}`,
          fn.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5) }),
          1,
          `${name}: a scheduled run failed after its retries`,
        );
      }
    }
  }
}
