#!/usr/bin/env node
// The CDK app: one stack, in a Japanese region only (seed 000 §2.4).
//   cdk deploy                                   ap-northeast-1 (Tokyo)
//   cdk deploy -c region=ap-northeast-3          Osaka
// Any other region is refused here, and by a rule in the template itself. The one exception is
// the CocoaEdge stack (the web ACL in front of the API): AWS creates CloudFront web ACLs only in
// us-east-1; it holds request-rate rules and no data.

import * as path from 'path';

import { App } from 'aws-cdk-lib';

import { ALLOWED_REGIONS, CocoaStack } from '../lib/cocoa-stack';
import { loadDeclaration } from '../lib/declaration';
import { CocoaEdgeStack } from '../lib/edge-stack';

export function regionFrom(context: unknown): string {
  const region = typeof context === 'string' && context.length > 0 ? context : 'ap-northeast-1';
  if (!ALLOWED_REGIONS.includes(region)) {
    throw new Error(`region ${region} refused: COCOA runs only in ${ALLOWED_REGIONS.join(' or ')}`);
  }
  return region;
}

export function buildApp(app: App): CocoaStack {
  const region = regionFrom(app.node.tryGetContext('region'));
  return new CocoaStack(app, 'Cocoa', {
    env: { region, account: process.env.CDK_DEFAULT_ACCOUNT },
    declaration: loadDeclaration(),
    artifactsDir:
      app.node.tryGetContext('artifactsDir') ?? path.join(__dirname, '..', '..', '..', 'target', 'lambda'),
    placeholderArtifacts: String(app.node.tryGetContext('placeholderArtifacts')) === 'true',
    description: 'COCOA backend: key submission, exports, consented logs',
  });
}

/** The web ACL for CloudFront: AWS creates CloudFront web ACLs only in us-east-1. */
export function buildEdge(app: App): CocoaEdgeStack {
  return new CocoaEdgeStack(app, 'CocoaEdge', {
    env: { region: 'us-east-1', account: process.env.CDK_DEFAULT_ACCOUNT },
    description: 'COCOA: the API web ACL (request-rate rules only, no data)',
  });
}

if (require.main === module) {
  const app = new App();
  buildEdge(app);
  buildApp(app);
  app.synth();
}
