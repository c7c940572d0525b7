import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parse as parseYaml } from 'yaml';
import { INTENT_KINDS, JSON_PATTERNS, subjects, type TopologyPlace } from '../../shared/index.js';
import { cidr, id, ipv4, mac } from '../../shared/contracts/fields.js';
import { EXIT } from '../../services/cli/output.js';
import { CHANNELS, addressMatches } from '../../scripts/contracts/channels.js';
import {
  ASYNCAPI_DOC,
  CONTRACTS_DOC,
  REGENERATE,
  SCHEMA_DIR,
  generateContracts,
} from '../../scripts/contracts/generate.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string): string => readFileSync(join(root, path), 'utf8');

const Published = suite(
  'published contracts (docs/contracts.md, docs/schemas, docs/asyncapi.yaml)',
);

Published('are what the generator makes of the code now', async () => {
  const files = await generateContracts(root);
  const stale: string[] = [];
  for (const [path, content] of files) {
    let current: string | undefined;
    try {
      current = read(path);
    } catch {
      current = undefined;
    }
    if (current !== content) stale.push(current === undefined ? `${path} (missing)` : path);
  }
  for (const name of readdirSync(join(root, SCHEMA_DIR))) {
    if (!files.has(`${SCHEMA_DIR}/${name}`)) stale.push(`${SCHEMA_DIR}/${name} (not generated)`);
  }
  assert.equal(
    stale,
    [],
    `stale: ${stale.join(', ')} — run \`${REGENERATE}\` and commit the result`,
  );
});

Published('give every intent kind a schema and a row in docs/contracts.md', () => {
  const intent = JSON.parse(read(`${SCHEMA_DIR}/intent.json`)) as {
    oneOf: Array<{ $ref: string }>;
    definitions: Record<string, { properties: { kind: { const: string } } }>;
  };
  const doc = read(CONTRACTS_DOC);
  for (const kind of INTENT_KINDS) {
    assert.is(intent.definitions[kind]?.properties.kind.const, kind, `intent.json lacks ${kind}`);
    assert.ok(
      intent.oneOf.some((r) => r.$ref === `#/definitions/${kind}`),
      `intent.json oneOf lacks ${kind}`,
    );
    assert.ok(doc.includes(`| [\`${kind}\`](#`), `${CONTRACTS_DOC} has no row for ${kind}`);
    assert.ok(doc.includes(`#### ${kind}\n`), `${CONTRACTS_DOC} has no section for ${kind}`);
  }
  assert.is(intent.oneOf.length, INTENT_KINDS.length);
});

const PLACE: TopologyPlace = { region: 'r1', az: 'az1', dc: 'dc1', cluster: 'c1' };
const SAMPLES: Record<string, unknown> = {
  vpcId: 'vpc-1',
  hostId: 'h-1',
  bucket: 7,
  bucketCount: 1024,
  place: PLACE,
};

/** What a builder of shared/subjects.ts builds, called with sample arguments by name. */
function built(name: string, builder: unknown): string[] {
  if (typeof builder === 'string') return [builder];
  if (Array.isArray(builder)) return builder as string[];
  const fn = builder as (...args: unknown[]) => string | string[];
  const params = /^\(?([^)=]*)\)?\s*=>/
    .exec(fn.toString())![1]!
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  const args = params.map((p) => {
    assert.ok(p in SAMPLES, `subjects.${name}: no sample for parameter ${p} in this test`);
    return SAMPLES[p];
  });
  const out = fn(...args);
  return Array.isArray(out) ? out : [out];
}

Published('list every subject builder of shared/subjects.ts as an AsyncAPI channel', () => {
  const asyncapi = parseYaml(read(ASYNCAPI_DOC)) as {
    channels: Record<string, { address: string | null }>;
  };
  const addresses = new Set(Object.values(asyncapi.channels).map((c) => c.address));
  for (const [name, builder] of Object.entries(subjects)) {
    const channels = CHANNELS.filter((c) => c.builders.includes(name));
    assert.ok(
      channels.length > 0,
      `subjects.${name} is in no channel of scripts/contracts/channels.ts: add it (then ${REGENERATE})`,
    );
    const made = built(name, builder);
    for (const channel of channels) {
      assert.ok(addresses.has(channel.address), `${ASYNCAPI_DOC} lacks ${channel.address}`);
      assert.ok(
        made.some((subject) => addressMatches(channel.address, subject)),
        `subjects.${name} (${made.join(', ')}) builds nothing of channel ${channel.address}`,
      );
    }
    for (const subject of made)
      assert.ok(
        channels.some((c) => addressMatches(c.address, subject)),
        `subjects.${name} builds ${subject}, which is none of its channels`,
      );
  }
});

Published('name only builders that exist', () => {
  for (const channel of CHANNELS)
    for (const name of channel.builders)
      assert.ok(name in subjects, `channel ${channel.id} names subjects.${name}, which is gone`);
});

const Patterns = suite('JSON Schema patterns of the refined fields');

/** Strings near each format's edges, plus random ones from its alphabet. */
function candidates(alphabet: string, pieces: string[], count: number): string[] {
  let seed = 42;
  const next = (n: number): number => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed % n;
  };
  const out = [...pieces];
  for (let i = 0; i < count; i++) {
    let s = '';
    const parts = 1 + next(8);
    for (let j = 0; j < parts; j++)
      s += next(2) === 0 ? pieces[next(pieces.length)]! : alphabet[next(alphabet.length)]!;
    out.push(s);
  }
  return out;
}

const agree = (name: keyof typeof JSON_PATTERNS, schema: typeof id, inputs: string[]) => {
  const pattern = new RegExp(JSON_PATTERNS[name]);
  for (const s of inputs)
    assert.is(pattern.test(s), schema.safeParse(s).success, `${name}: ${JSON.stringify(s)}`);
};

Patterns('id: the pattern is the refinement', () => {
  agree('id', id, candidates('aZ09_-.* >', ['', 'a'.repeat(64), 'a'.repeat(65), 'vpc-1'], 3000));
});

Patterns('ipv4: the pattern is the refinement', () => {
  const octets = [
    '0',
    '00',
    '01',
    '9',
    '10',
    '99',
    '100',
    '199',
    '249',
    '250',
    '255',
    '256',
    '300',
    '999',
    '1000',
  ];
  agree(
    'ipv4',
    ipv4,
    candidates('0123456789.', [...octets.map((o) => `${o}.`), ...octets], 20_000),
  );
});

Patterns('mac: the pattern is the refinement', () => {
  agree(
    'mac',
    mac,
    candidates('0123456789abcdefA:', ['fa:16:3e', '01:', 'ff:', ':00', '02'], 20_000),
  );
});

Patterns('cidr: the pattern admits every valid block, and only host bits set are beyond it', () => {
  const inputs = candidates(
    '0123456789./',
    ['10.0.0.0', '/8', '/32', '/33', '/024', '255.', '0.', '/0'],
    20_000,
  );
  const pattern = new RegExp(JSON_PATTERNS.cidr);
  for (const s of inputs) {
    if (cidr.safeParse(s).success)
      assert.ok(pattern.test(s), `cidr ${s} valid, pattern refuses it`);
  }
  assert.ok(pattern.test('10.0.0.1/16') && !cidr.safeParse('10.0.0.1/16').success);
});

const Reference = suite('docs/contracts.md as a reference');

/** Every error code the code base answers with, by the way it is written there. */
function codesInCode(): Set<string> {
  const files = [
    'actors/vpc/decider.ts',
    'actors/vpc/programmed.ts',
    'actors/nca/agent.ts',
    'services/controller/api/applyApi.ts',
    'services/controller/api/statusWatch.ts',
    'services/controller/buckets/intake.ts',
    'infra/nats/reply.ts',
    ...readdirSync(join(root, 'shared/contracts')).map((f) => `shared/contracts/${f}`),
  ];
  const codes = new Set<string>();
  const forms = [
    /\breject\(\s*'([a-z_]+)'/g,
    /\bfail\(\s*'([a-z_]+)'/g,
    /\bdetail\(\s*'([a-z_]+)'/g,
    /\bcode: '([a-z_]+)'/g,
  ];
  for (const file of files) {
    const text = read(file);
    for (const form of forms) for (const m of text.matchAll(form)) codes.add(m[1]!);
  }
  codes.delete('custom'); // zod's own issue code, mapped to the codes above
  return codes;
}

Reference('has a row for every error code the code base answers with', () => {
  const doc = read(CONTRACTS_DOC);
  const section = doc.slice(doc.indexOf('## Error codes'), doc.indexOf('## Exit codes'));
  const missing = [...codesInCode()].filter((c) => !section.includes(`\`${c}\``));
  assert.equal(missing, [], `${CONTRACTS_DOC} "Error codes" lacks ${missing.join(', ')}`);
});

Reference('has a row for every exit code of the alcor CLI', () => {
  const doc = read(CONTRACTS_DOC);
  const section = doc.slice(doc.indexOf('## Exit codes'));
  for (const [name, code] of Object.entries(EXIT))
    assert.ok(
      section.includes(`| ${code} `),
      `${CONTRACTS_DOC} "Exit codes" lacks ${code} (${name})`,
    );
});

Published.run();
Patterns.run();
Reference.run();
