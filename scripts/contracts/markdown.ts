/**
 * The generated sections of docs/contracts.md: tables made from the JSON Schemas,
 * the channel list and the stream declarations, so that the reference cannot drift
 * from the code. Each section sits between `<!-- BEGIN GENERATED: name -->` and
 * `<!-- END GENERATED: name -->`; everything else in the file is written by hand.
 */
import { INTENT_KINDS } from '../../shared/index.js';
import type { KvSpec, StreamSpec } from '../../infra/nats/declarations.js';
import { CHANNELS, type Channel } from './channels.js';
import { NOT_EXPRESSED, SCHEMA_FILES, type JsonSchema } from './schemas.js';

type Schemas = ReadonlyMap<string, JsonSchema>;
type Node = JsonSchema & {
  $ref?: string;
  type?: string;
  title?: string;
  description?: string;
  properties?: Record<string, Node>;
  required?: string[];
  items?: Node | Node[];
  additionalProperties?: Node | boolean;
  propertyNames?: Node;
  anyOf?: Node[];
  oneOf?: Node[];
  enum?: unknown[];
  const?: unknown;
};

const NO_LIMIT = Number.MAX_SAFE_INTEGER;

/** Markdown-safe text: pipes escaped, angle brackets outside code spans as entities. */
export function cell(text: string): string {
  return text
    .split(/(`[^`]*`)/)
    .map((part) =>
      part.startsWith('`') ? part : part.replaceAll('<', '&lt;').replaceAll('>', '&gt;'),
    )
    .join('')
    .replaceAll('|', '\\|')
    .replaceAll('\n', ' ');
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

function resolve(node: Node, root: JsonSchema): Node {
  if (!node.$ref) return node;
  const name = decodeURIComponent(node.$ref.replace('#/definitions/', ''));
  const found = (root.definitions as Record<string, Node> | undefined)?.[name];
  if (!found) throw new Error(`unresolved ${node.$ref}`);
  return found;
}

function range(node: Node, unit = ''): string {
  const rawMin = node.minimum as number | undefined;
  const min = rawMin === -NO_LIMIT ? undefined : rawMin;
  const max = node.maximum as number | undefined;
  const xmin = node.exclusiveMinimum as number | undefined;
  const hasMax = max !== undefined && max !== NO_LIMIT;
  if (min !== undefined && hasMax) return ` ${min}–${max}${unit}`;
  if (min !== undefined) return ` ≥ ${min}${unit}`;
  if (xmin !== undefined) return ` > ${xmin}${unit}`;
  if (hasMax) return ` ≤ ${max}${unit}`;
  return '';
}

/** A field's type in a few words. */
export function typeOf(input: Node, root: JsonSchema): string {
  if (input.$ref) {
    const name = decodeURIComponent(input.$ref.replace('#/definitions/', ''));
    return `\`${name}\``;
  }
  const node = input;
  const alternatives = node.oneOf ?? node.anyOf;
  if (alternatives) {
    if (alternatives.length > 3 && alternatives.every((a) => a.$ref))
      return `one of ${alternatives.length} (below)`;
    return alternatives.map((a) => typeOf(a, root)).join(' or ');
  }
  if (node.const !== undefined) return `\`${JSON.stringify(node.const)}\``;
  if (node.enum) return node.enum.map((v) => `\`${String(v)}\``).join(', ');
  if (node.title) return node.title;
  switch (node.type) {
    case 'integer':
      return `integer${range(node)}`;
    case 'number':
      return `number${range(node)}`;
    case 'boolean':
      return 'boolean';
    case 'string': {
      const pattern = node.pattern as string | undefined;
      const max = node.maxLength as number | undefined;
      return `string${pattern ? ` \`${pattern}\`` : ''}${max !== undefined ? ` (≤ ${max} characters)` : ''}`;
    }
    case 'array': {
      if (Array.isArray(node.items))
        return `[${node.items.map((i) => typeOf(i, root)).join(', ')}]`;
      const item = node.items ? typeOf(node.items, root) : 'any';
      const min = node.minItems as number | undefined;
      const max = node.maxItems as number | undefined;
      const count =
        min !== undefined && max !== undefined
          ? `${min}–${max} `
          : max !== undefined
            ? `≤ ${max} `
            : min !== undefined
              ? `≥ ${min} `
              : '';
      return `list of ${count}${item}${node.uniqueItems ? ', no repeats' : ''}`;
    }
    case 'object': {
      if (node.properties) return 'object';
      if (typeof node.additionalProperties === 'object') {
        const key = node.propertyNames ? typeOf(node.propertyNames, root) : 'string';
        return `map of ${key} → ${typeOf(node.additionalProperties, root)}`;
      }
      return 'object';
    }
    default:
      return 'any';
  }
}

/** Rows `field | type | required | meaning` of an object, nested objects as `a.b`. */
function fieldRows(input: Node, root: JsonSchema, prefix = '', nested = true): string[][] {
  const node = resolve(input, root);
  const rows: string[][] = [];
  const required = new Set(node.required ?? []);
  for (const [name, child] of Object.entries(node.properties ?? {})) {
    const path = `${prefix}${name}`;
    const target = resolve(child, root);
    rows.push([
      `\`${path}\``,
      cell(typeOf(child, root)),
      required.has(name) ? 'yes' : 'no',
      cell(child.description ?? target.description ?? ''),
    ]);
    if (!nested) continue;
    if (target.type === 'object' && target.properties)
      rows.push(...fieldRows(target, root, `${path}.`));
    const items =
      target.type === 'array' && !Array.isArray(target.items) ? target.items : undefined;
    if (items && resolve(items, root).properties)
      rows.push(...fieldRows(items, root, `${path}[].`));
  }
  return rows;
}

const FIELD_HEADER = ['field', 'type', 'required', 'meaning'];

function fieldTable(node: Node, root: JsonSchema, nested = true): string {
  const rows = fieldRows(node, root, '', nested);
  return rows.length === 0 ? 'No fields: `{}`.' : table(FIELD_HEADER, rows);
}

function definition(root: JsonSchema, name: string): Node {
  const found = (root.definitions as Record<string, Node> | undefined)?.[name];
  if (!found) throw new Error(`${String(root.$id)} has no definition ${name}`);
  return found;
}

function intentsSection(schemas: Schemas): string {
  const intent = schemas.get('intent')!;
  const first = definition(intent, INTENT_KINDS[0]!);
  const envelope: Node = {
    type: 'object',
    properties: Object.fromEntries(
      Object.entries(first.properties!).map(([k, v]) =>
        k === 'kind'
          ? [k, { type: 'string', description: 'one of the 12 kinds below' }]
          : k === 'spec'
            ? [k, { type: 'object', description: "the kind's fields (below)" }]
            : [k, v],
      ),
    ),
    required: first.required ?? [],
  };
  const out = ['The envelope (every kind):', '', fieldTable(envelope, intent, false), ''];
  out.push(
    table(
      ['kind', 'spec fields (required in bold)'],
      INTENT_KINDS.map((kind) => {
        const spec = resolve(definition(intent, kind).properties!.spec!, intent);
        const req = new Set(spec.required ?? []);
        const fields = Object.keys(spec.properties ?? {}).map((f) =>
          req.has(f) ? `**\`${f}\`**` : `\`${f}\``,
        );
        return [`[\`${kind}\`](#${kind.replace('.', '')})`, fields.join(', ') || '(none)'];
      }),
    ),
    '',
  );
  for (const kind of INTENT_KINDS) {
    const spec = resolve(definition(intent, kind).properties!.spec!, intent);
    out.push(`#### ${kind}`, '');
    if (spec.description) out.push(`${cell(spec.description)}.`, '');
    out.push(fieldTable(spec, intent, false), '');
  }
  const sg = resolve(definition(intent, 'sg.create').properties!.spec!, intent);
  const rule = (sg.properties!.rules!.items as Node) ?? {};
  out.push('#### A security-group rule', '', fieldTable(rule, intent, false));
  return out.join('\n');
}

function namedAlternatives(root: JsonSchema, names: string[], strip: string[]): string {
  return table(
    ['name', 'fields'],
    names.map((name) => {
      const node = definition(root, name);
      const req = new Set(node.required ?? []);
      const fields = Object.keys(node.properties ?? {})
        .filter((f) => !strip.includes(f))
        .map((f) => (req.has(f) ? `\`${f}\`` : `\`${f}\`?`));
      return [`\`${name}\``, fields.join(', ') || '—'];
    }),
  );
}

function definitionNames(root: JsonSchema, test: (name: string) => boolean): string[] {
  return Object.keys((root.definitions as Record<string, Node> | undefined) ?? {}).filter(test);
}

function messagesSection(schemas: Schemas): string {
  const get = (name: string): JsonSchema => {
    const s = schemas.get(name);
    if (!s) throw new Error(`no schema ${name}`);
    return s;
  };
  const out: string[] = [];
  const whole = (title: string, name: string) =>
    out.push(
      `#### ${title} ([\`${name}.json\`](schemas/${name}.json))`,
      '',
      fieldTable(get(name), get(name)),
      '',
    );

  whole('Status', 'status');
  whole('Goal-state ack', 'goal-state-ack');

  const gs = get('goal-state');
  out.push(
    '#### Goal state ([`goal-state.json`](schemas/goal-state.json))',
    '',
    fieldTable(gs, gs),
    '',
    'Each op is `{op, kind, key, rev}`, and an `upsert` adds `value`. `rev` is the revision that last changed the resource; `key` is `vpc`, `subnet:<id>`, `port:<id>`, `neighbor:<portId>`, `sg:<id>` or `route:<cidr>`. The op kinds and their `value` fields:',
    '',
  );
  out.push(
    table(
      ['kind', 'value fields (upsert)'],
      definitionNames(gs, (n) => n.startsWith('upsert-')).map((name) => {
        const value = resolve(definition(gs, name).properties!.value!, gs);
        return [
          `\`${name.slice('upsert-'.length)}\``,
          Object.keys(value.properties ?? {})
            .map((f) => `\`${f}\``)
            .join(', '),
        ];
      }),
    ),
    '',
  );

  const ev = get('event-message');
  const commit = (ev.anyOf as Node[])[0]!;
  const group = (ev.anyOf as Node[])[1]!;
  out.push(
    '#### EVENTS message ([`event-message.json`](schemas/event-message.json))',
    '',
    'One commit:',
    '',
    fieldTable(commit, ev, false),
    '',
    'Or a group of commits of one VPC, appended together (they share one revision):',
    '',
    fieldTable(group, ev, false),
    '',
    'The event types (`events[]`, each `{type, …}`):',
    '',
    namedAlternatives(
      ev,
      definitionNames(ev, () => true),
      ['type'],
    ),
    '',
  );

  const reply = get('apply-reply');
  out.push('#### Sync API reply items ([`apply-reply.json`](schemas/apply-reply.json))', '');
  for (const outcome of ['accepted', 'rejected', 'pending']) {
    out.push(`\`${outcome}\`:`, '', fieldTable(definition(reply, outcome), reply), '');
  }

  whole('Resync request', 'resync-request');
  const resync = get('resync-reply');
  out.push(
    '#### Resync reply ([`resync-reply.json`](schemas/resync-reply.json))',
    '',
    fieldTable((resync.anyOf as Node[])[0]!, resync),
    '',
    'Or `{error}` for a request it refused.',
    '',
  );
  whole('Host record', 'host');
  whole('Agent state reply', 'nca-state-reply');
  return out.join('\n').trimEnd();
}

function subjectsSection(): string {
  const kept = (c: Channel): string =>
    !c.kept ? '—' : 'stream' in c.kept ? `stream \`${c.kept.stream}\`` : `KV \`${c.kept.kv}\``;
  const message = (c: Channel): string => {
    const names = c.messages.map((m) =>
      typeof m.schema === 'string' ? `[${m.schema}](schemas/${m.schema}.json)` : cell(m.title),
    );
    const reply = c.reply
      ? ` → ${typeof c.reply.schema === 'string' ? `[${c.reply.schema}](schemas/${c.reply.schema}.json)` : cell(c.reply.title)}`
      : '';
    return `${names.join(', ')}${reply}`;
  };
  const row = (c: Channel) => [
    `\`${c.address}\`${c.internal ? ' (internal)' : ''}`,
    cell(c.summary),
    kept(c),
    cell(c.publishers),
    cell(c.subscribers),
    message(c),
  ];
  const header = ['subject', 'what', 'kept in', 'published by', 'read by', 'message'];
  const kv = CHANNELS.filter((c) => c.kept && 'kv' in c.kept);
  const rest = CHANNELS.filter((c) => !kv.includes(c));
  return [
    'NATS subjects and Kafka topics (`alcor.gs.…` is a Kafka topic):',
    '',
    table(header, rest.map(row)),
    '',
    'KV keys (a KV bucket `b` is stream `KV_b`; key `k` is subject `$KV.b.k`):',
    '',
    table(['key', 'what', 'bucket', 'written by', 'read by', 'value'], kv.map(row)),
  ].join('\n');
}

const duration = (ns: number): string => {
  if (ns === 0) return 'forever';
  const ms = ns / 1_000_000;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${ms / 1000} s`;
};

function streamsSection(streams: StreamSpec[], kv: KvSpec[]): string {
  return [
    table(
      ['stream', 'subjects', 'kept for', 'duplicate window'],
      streams.map((s) => [
        `\`${s.name}\``,
        (s.subjects ?? []).map((x) => `\`${x}\``).join(', '),
        duration(s.max_age ?? 0),
        duration(s.duplicate_window ?? 0),
      ]),
    ),
    '',
    table(
      ['KV bucket', 'history', 'entries expire'],
      kv.map((k) => [
        `\`${k.bucket}\``,
        String(k.history),
        k.ttlMs === 0 ? 'never' : `after the heartbeat TTL (${k.ttlMs / 1000} s by default)`,
      ]),
    ),
  ].join('\n');
}

function headersSection(): string {
  const rows: string[][] = [];
  for (const c of CHANNELS) {
    for (const m of [...c.messages, ...(c.reply ? [c.reply] : [])]) {
      for (const h of m.headers ?? [])
        rows.push([`\`${h.name}\``, `\`${c.address}\``, cell(h.description)]);
    }
  }
  return table(['header', 'on', 'meaning'], rows);
}

function schemasSection(): string {
  return table(
    ['file', 'what'],
    SCHEMA_FILES.map((f) => [`[\`${f.name}.json\`](schemas/${f.name}.json)`, cell(f.description)]),
  );
}

function notExpressedSection(): string {
  return table(
    ['where', 'rule', 'code'],
    NOT_EXPRESSED.map((n) => [n.where, n.rule, `\`${n.code}\``]),
  );
}

export function generatedSections(
  schemas: Schemas,
  layout: { streams: StreamSpec[]; kv: KvSpec[] },
): Record<string, string> {
  return {
    subjects: subjectsSection(),
    streams: streamsSection(layout.streams, layout.kv),
    headers: headersSection(),
    intents: intentsSection(schemas),
    messages: messagesSection(schemas),
    schemas: schemasSection(),
    'not-expressed': notExpressedSection(),
  };
}

const BEGIN = (name: string) => `<!-- BEGIN GENERATED: ${name} (npm run contracts) -->`;
const END = (name: string) => `<!-- END GENERATED: ${name} -->`;

/** The document with each marked section replaced; a section without its markers is an error. */
export function fillSections(doc: string, sections: Record<string, string>): string {
  let out = doc;
  for (const [name, body] of Object.entries(sections)) {
    const begin = out.indexOf(BEGIN(name));
    const end = out.indexOf(END(name));
    if (begin < 0 || end < begin)
      throw new Error(
        `docs/contracts.md lacks the markers of section ${name}: ${BEGIN(name)} … ${END(name)}`,
      );
    out = `${out.slice(0, begin + BEGIN(name).length)}\n\n${body}\n\n${out.slice(end)}`;
  }
  return out;
}
