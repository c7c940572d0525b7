/**
 * Reading a JSON or YAML document the user names (a file, or `-` for stdin):
 * every fault is a CliError that names the file and says what is wrong — a
 * missing file exits 3, a bad or oversized one 2.
 */
import { readFile } from 'node:fs/promises';
import { Composer, LineCounter, Parser, YAMLParseError } from 'yaml';
import { AlcorError, type ErrorDetail } from '../../shared/index.js';
import { CliError, EXIT } from './output.js';

/** `<file>: <path>: <message> (<code>)`; the path once, when the message does not begin with it. */
export const describeFault = (file: string, e: ErrorDetail): string =>
  `${file}: ${e.path && !e.message.startsWith(`${e.path}:`) ? `${e.path}: ` : ''}${e.message} (${e.code})`;

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Deepest nesting a document may have (a topology file has 4 levels, an intent about 7). */
export const MAX_DOCUMENT_DEPTH = 64;

/** A YAML document too deep to compose. */
class TooDeep extends AlcorError {
  constructor() {
    super('too_deep', `nested deeper than ${MAX_DOCUMENT_DEPTH} levels`);
  }
}

/** How deep the syntax tree nests (walked without recursion). */
function yamlDepth(tokens: readonly unknown[]): number {
  type Node = { type?: string; value?: unknown; items?: Array<{ key?: unknown; value?: unknown }> };
  let max = 0;
  const todo: Array<[unknown, number]> = tokens.map((t) => [t, 0]);
  while (todo.length > 0) {
    const [node, depth] = todo.pop()!;
    if (!node || typeof node !== 'object') continue;
    const t = node as Node;
    if (t.type === 'document') {
      todo.push([t.value, depth]);
      continue;
    }
    max = Math.max(max, depth);
    if (max > MAX_DOCUMENT_DEPTH) return max;
    for (const item of t.items ?? []) todo.push([item.key, depth + 1], [item.value, depth + 1]);
  }
  return max;
}

/**
 * One YAML document, as `yaml`'s `parse` reads it, but with its depth measured
 * between the syntax tree (built without recursion) and the composer (which
 * recurses once per level). Thousands of levels exhaust the stack, and where that
 * happens inside V8's regexp compiler the process aborts ("RegExpCompiler
 * Allocation failed") instead of throwing. Throws TooDeep, or the first
 * YAMLParseError with the line it is on.
 */
function parseYamlDocument(text: string): unknown {
  const lines = new LineCounter();
  const tokens = [...new Parser(lines.addNewLine).parse(text)];
  if (yamlDepth(tokens) > MAX_DOCUMENT_DEPTH) throw new TooDeep();
  const docs = [...new Composer().compose(tokens, true, text.length)];
  const errors = docs[0]!.errors;
  if (docs.length > 1)
    errors.push(
      new YAMLParseError(
        docs[1]!.range.slice(0, 2) as [number, number],
        'MULTIPLE_DOCS',
        'Source contains multiple documents',
      ),
    );
  const first = errors[0];
  if (first) {
    first.linePos = [lines.linePos(first.pos[0])];
    throw first;
  }
  return docs[0]!.toJS({ maxAliasCount: 100 });
}

/** The parsed document. JSON by a `.json` name, YAML otherwise (YAML reads JSON too). */
export async function readDocument(file: string, maxBytes: number): Promise<unknown> {
  let text: string;
  try {
    const bytes = file === '-' ? await readStdin() : await readFile(file);
    if (bytes.length > maxBytes)
      throw new CliError(`${file}: larger than ${maxBytes} bytes`, EXIT.usage);
    text = bytes.toString('utf8');
  } catch (err) {
    if (err instanceof CliError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(
      `${file}: cannot read it (${code ?? (err as Error).message})`,
      code === 'ENOENT' ? EXIT.notFound : EXIT.failure,
    );
  }
  const json = /\.json$/i.test(file);
  try {
    return json ? JSON.parse(text) : parseYamlDocument(text);
  } catch (err) {
    if (err instanceof TooDeep)
      throw new CliError(
        describeFault(file, {
          code: 'too_deep',
          message: `nested deeper than ${MAX_DOCUMENT_DEPTH} levels`,
        }),
        EXIT.usage,
      );
    const where =
      err instanceof YAMLParseError && err.linePos ? ` at line ${err.linePos[0].line}` : '';
    throw new CliError(
      describeFault(file, {
        code: 'invalid_syntax',
        message: `not ${json ? 'JSON' : 'YAML'}${where}: ${(err as Error).message.split('\n')[0]}`,
      }),
      EXIT.usage,
    );
  }
}
