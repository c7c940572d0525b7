/**
 * Reading a JSON or YAML document the user names (a file, or `-` for stdin):
 * every fault is a CliError that names the file and says what is wrong — a
 * missing file exits 3, a bad or oversized one 2.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { ErrorDetail } from '../../shared/index.js';
import { CliError, EXIT } from './output.js';

export const describeFault = (file: string, e: ErrorDetail): string =>
  `${file}: ${e.path ? `${e.path}: ` : ''}${e.message} (${e.code})`;

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
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
    return json ? JSON.parse(text) : parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
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
