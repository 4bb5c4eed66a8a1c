// Each function is deployed from its own artefact, target/lambda/<name>/bootstrap.zip, and its
// asset hash follows that zip's bytes: a changed zip is a new asset (uploaded and deployed), an
// unchanged one keeps its hash (nothing to deploy). Runs on zips of its own in a temporary
// directory, so it needs no build; scripts/check_artefacts.py --cdk-out checks that the
// synthesized template of the real build carries exactly the zips scripts/package made.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';

import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';

import { buildApp } from '../bin/app';
import { loadDeclaration } from '../lib/declaration';

const declaration = loadDeclaration();

/** Each function's code location (S3 key of its asset) when synthesized from `artifactsDir`. */
function codeKeys(artifactsDir: string): Map<string, string> {
  const app = new App({
    context: { placeholderArtifacts: 'false', artifactsDir },
    outdir: fs.mkdtempSync(path.join(os.tmpdir(), 'cocoa-cdk-out-')),
  });
  const resources = Template.fromStack(buildApp(app)).toJSON().Resources as Record<string, any>;
  const keys = new Map<string, string>();
  for (const resource of Object.values(resources)) {
    if (resource.Type === 'AWS::Lambda::Function' && resource.Properties.FunctionName) {
      keys.set(resource.Properties.FunctionName, JSON.stringify(resource.Properties.Code.S3Key));
    }
  }
  return keys;
}

function artefacts(bytes: (name: string) => string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cocoa-artefacts-'));
  for (const fn of declaration.functions) {
    fs.mkdirSync(path.join(dir, fn.name));
    fs.writeFileSync(path.join(dir, fn.name, 'bootstrap.zip'), bytes(fn.name));
  }
  return dir;
}

test("each function's asset hash follows its own zip's bytes, and only those", () => {
  const first = codeKeys(artefacts((name) => `zip of ${name}`));
  assert.equal(first.size, declaration.functions.length);
  assert.equal(new Set(first.values()).size, first.size, 'every function has an asset of its own');

  const again = codeKeys(artefacts((name) => `zip of ${name}`));
  assert.deepEqual(again, first, 'the same bytes, elsewhere: the same assets');

  const changed = declaration.functions[0].name;
  const rebuilt = codeKeys(artefacts((name) => (name === changed ? `zip of ${name}, rebuilt` : `zip of ${name}`)));
  for (const fn of declaration.functions) {
    if (fn.name === changed) {
      assert.notEqual(rebuilt.get(fn.name), first.get(fn.name), `${fn.name} changed: a new asset`);
    } else {
      assert.equal(rebuilt.get(fn.name), first.get(fn.name), `${fn.name} unchanged: the same asset`);
    }
  }
});

test('without -c placeholderArtifacts=true a missing zip stops synthesis', () => {
  const dir = artefacts((name) => `zip of ${name}`);
  fs.rmSync(path.join(dir, declaration.functions[1].name, 'bootstrap.zip'));
  assert.throws(() => codeKeys(dir), /bootstrap\.zip is missing: run/);
});
