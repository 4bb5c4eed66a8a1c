// The web ACL in front of the API. An HTTP API cannot take a web ACL, so the API is served through
// CloudFront, and a CloudFront web ACL must be created in us-east-1 (AWS's rule for global
// resources). It holds no data, only request-rate rules; everything else stays in Japan.

import { CfnOutput, Stack, StackProps } from 'aws-cdk-lib';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';

/** Requests per source address per 5 minutes (docs/security.md). */
export const GUESSING_RATE_LIMIT = 100;
export const OVERALL_RATE_LIMIT = 2000;
/** The paths a processing-number guess can use. */
export const GUESSING_PATHS = ['/api/v1/verification', '/api/v3/diagnosis', '/api/v2/diagnosis'];

export class CocoaEdgeStack extends Stack {
  readonly webAcl: wafv2.CfnWebACL;

  constructor(scope: Construct, id: string, props: StackProps) {
    super(scope, id, props);
    // No sampled requests and no WAF logging: both would record source addresses.
    const visibility = (name: string): wafv2.CfnWebACL.VisibilityConfigProperty => ({
      cloudWatchMetricsEnabled: true,
      metricName: name,
      sampledRequestsEnabled: false,
    });
    this.webAcl = new wafv2.CfnWebACL(this, 'ApiWebAcl', {
      name: 'cocoa-api',
      scope: 'CLOUDFRONT',
      defaultAction: { allow: {} },
      visibilityConfig: visibility('cocoa-api'),
      rules: [
        {
          name: 'guessing-routes-per-address',
          priority: 0,
          action: { block: {} },
          visibilityConfig: visibility('cocoa-api-guessing'),
          statement: {
            rateBasedStatement: {
              limit: GUESSING_RATE_LIMIT,
              evaluationWindowSec: 300,
              aggregateKeyType: 'IP',
              scopeDownStatement: {
                orStatement: {
                  statements: GUESSING_PATHS.map((path) => ({
                    byteMatchStatement: {
                      fieldToMatch: { uriPath: {} },
                      positionalConstraint: 'EXACTLY',
                      searchString: path,
                      textTransformations: [{ priority: 0, type: 'NONE' }],
                    },
                  })),
                },
              },
            },
          },
        },
        {
          name: 'all-routes-per-address',
          priority: 1,
          action: { block: {} },
          visibilityConfig: visibility('cocoa-api-overall'),
          statement: {
            rateBasedStatement: { limit: OVERALL_RATE_LIMIT, evaluationWindowSec: 300, aggregateKeyType: 'IP' },
          },
        },
        {
          // Request patterns known to exploit servers (Log4Shell probes and the like).
          name: 'known-bad-inputs',
          priority: 2,
          overrideAction: { none: {} },
          visibilityConfig: visibility('cocoa-api-bad-inputs'),
          statement: {
            managedRuleGroupStatement: { vendorName: 'AWS', name: 'AWSManagedRulesKnownBadInputsRuleSet' },
          },
        },
      ],
    });
    new CfnOutput(this, 'ApiWebAclArn', {
      value: this.webAcl.attrArn,
      description: 'pass to the Cocoa stack as --parameters apiWebAclArn=…',
    });
  }
}
