/**
 * A certificate authority of one's own and a server certificate signed by it, made
 * with the machine's openssl: what the local provisioning, the compose deployment
 * (`alcor tls-config`) and the tests give nats-server, Redis and Kafka, so that
 * every client verifies the server it talks to (NATS_CA_FILE, REDIS_CA_FILE,
 * KAFKA_<ID>_CA_FILE). Keys are EC P-256, unencrypted, readable by their owner only.
 */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ServerUnavailableError } from '../../shared/index.js';
import { cacheDir, cached } from './cache.js';
import { run, which } from './exec.js';

export interface TlsFiles {
  /** The CA's certificate: what clients verify servers with. */
  caFile: string;
  /** The server's certificate and key (PEM). */
  certFile: string;
  keyFile: string;
  /** Key and certificate in one file (Kafka's PEM keystore). */
  keyAndCertFile: string;
}

const NAME = /^[A-Za-z0-9.-]{1,253}$/;
const IP = /^\d{1,3}(\.\d{1,3}){3}$/;

/**
 * Makes (or, when `dir` already has them, keeps) a CA and one server certificate
 * valid for `names` (DNS names and IPv4 addresses), for 825 days.
 */
export async function makeTlsFiles(dir: string, names: readonly string[]): Promise<TlsFiles> {
  const bad = names.find((n) => !NAME.test(n));
  if (bad !== undefined || names.length === 0)
    throw new ServerUnavailableError(
      'tls',
      `certificate names must be DNS names or IPv4 addresses: ${JSON.stringify(bad ?? names)}`,
    );
  const openssl = await which('openssl');
  if (!openssl)
    throw new ServerUnavailableError('tls', 'no openssl on PATH: apt-get install openssl');
  mkdirSync(dir, { recursive: true });
  const files = filesIn(dir);
  if (
    [files.caFile, files.certFile, files.keyFile, files.keyAndCertFile].every((f) => existsSync(f))
  )
    return files;
  const caKey = join(dir, 'ca.key');
  const ossl = (args: string[]) => run(openssl, args, { timeoutMs: 30_000 });
  const newKey = (out: string) =>
    ossl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', out]);
  if (!existsSync(caKey) || !existsSync(files.caFile)) {
    await newKey(caKey);
    await ossl([
      'req', '-x509', '-new', '-key', caKey, '-sha256', '-days', '3650',
      '-subj', '/CN=alcor-southbound local CA', '-out', files.caFile,
    ]); // prettier-ignore
  }
  await newKey(files.keyFile);
  const csr = join(dir, 'server.csr');
  await ossl(['req', '-new', '-key', files.keyFile, '-subj', `/CN=${names[0]}`, '-out', csr]);
  const ext = join(dir, 'server.ext');
  const san = names.map((n) => (IP.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  writeFileSync(
    ext,
    `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n`,
  );
  await ossl([
    'x509', '-req', '-in', csr, '-CA', files.caFile, '-CAkey', caKey, '-CAcreateserial',
    '-days', '825', '-sha256', '-extfile', ext, '-out', files.certFile,
  ]); // prettier-ignore
  const { stdout: key } = await ossl(['pkey', '-in', files.keyFile]);
  const { stdout: cert } = await ossl(['x509', '-in', files.certFile]);
  writeFileSync(files.keyAndCertFile, `${key.trim()}\n${cert.trim()}\n`, { mode: 0o600 });
  for (const f of [caKey, files.keyFile]) chmodSync(f, 0o600);
  return files;
}

function filesIn(dir: string): TlsFiles {
  return {
    caFile: join(dir, 'ca.crt'),
    certFile: join(dir, 'server.crt'),
    keyFile: join(dir, 'server.key'),
    keyAndCertFile: join(dir, 'server.pem'),
  };
}

/**
 * The TLS files of every server local provisioning runs: a CA and a certificate
 * for 127.0.0.1 and localhost, made once per checkout in `.cache/tls` (like a
 * developer's local CA; its key readable by its owner only). One CA for all means
 * a process trusts every server provisioned here, whichever run started it.
 */
export async function localTlsFiles(): Promise<TlsFiles> {
  const dir = join(cacheDir(), 'tls');
  try {
    await cached(dir, async (tmp) => {
      await makeTlsFiles(tmp, ['localhost', '127.0.0.1']);
    });
  } catch (err) {
    // Another process made it at the same moment: theirs is as good.
    if (!existsSync(filesIn(dir).keyAndCertFile)) throw err;
  }
  return filesIn(dir);
}
