import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseTaskSpec } from '../../lib/task/spec.ts';

// The samples a user copies: every examples/*.json must start on AWS, and the README shows the same JSON.
const EXAMPLES = new URL('../../examples/', import.meta.url);
const README = new URL('../../README.md', import.meta.url);
const MARKER = '<!-- sample-input: examples/task-aws.json -->';

function readJson(url: URL): unknown {
  return JSON.parse(readFileSync(url, 'utf8'));
}

describe('examples/*.json', () => {
  const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.json'));

  it('holds the AWS sample', () => {
    expect(files).toContain('task-aws.json');
  });

  for (const file of files) {
    it(`${file} is a valid task spec on AWS`, () => {
      expect(() => parseTaskSpec(readJson(new URL(file, EXAMPLES)), { mode: 'aws' })).not.toThrow();
    });
  }
});

describe('README', () => {
  it('shows examples/task-aws.json as the sample input', () => {
    const text = readFileSync(README, 'utf8');
    const at = text.indexOf(MARKER);
    expect(at, `README has no ${MARKER}`).toBeGreaterThanOrEqual(0);
    const block = /^```json\n([\s\S]*?)\n```$/m.exec(text.slice(at + MARKER.length));
    expect(block, 'a ```json block after the marker').not.toBeNull();
    expect(JSON.parse(block![1]!)).toEqual(readJson(new URL('task-aws.json', EXAMPLES)));
  });
});
