/**
 * An nkey authenticator that signs the server's nonce with node:crypto's Ed25519.
 * nats.js's own derives the key pair from the seed on every connect and signs with
 * tweetnacl in JavaScript (several ms a connect): an NCA fleet of 1,000 hosts, each
 * its own user, spent most of its CPU there when NATS came back, and its TLS
 * handshakes timed out behind the signing. Here the seed is decoded once; a
 * signature takes tens of microseconds. Ed25519 is deterministic: the signatures
 * are the same bytes (test/unit/natsAuth.test.ts).
 */
import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { nkeyAuthenticator, nkeys, type Authenticator } from '@nats-io/transport-node';

/** PKCS#8 DER header of an Ed25519 private key: the 32-byte seed follows. */
const ED25519_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex');

export function nkeySeedAuthenticator(seed: Uint8Array): Authenticator {
  const kp = nkeys.fromSeed(seed) as nkeys.KeyPair & { getRawSeed?: () => Uint8Array };
  // The raw seed is not part of the KeyPair interface: without it, nats.js's own.
  if (typeof kp.getRawSeed !== 'function') return nkeyAuthenticator(seed);
  const nkey = kp.getPublicKey();
  const key: KeyObject = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8, Buffer.from(kp.getRawSeed())]),
    format: 'der',
    type: 'pkcs8',
  });
  return (nonce?: string) => ({
    nkey,
    sig: nonce ? nkeys.encode(sign(null, Buffer.from(nonce), key)) : '',
  });
}
