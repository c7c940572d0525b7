/**
 * deploy/kubernetes as an operator would rely on it (no cluster runs here): every
 * workload runs the image this build makes, a service main that exists, as a
 * non-root user with a read-only root; its probes are the service's /healthz and
 * /readyz on the port it serves them; every file a variable names lies in a volume
 * mounted read-only from a Secret; and the file holds no Secret itself.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../../infra/index.js';

interface Container {
  name: string;
  image: string;
  args: string[];
  env?: Array<{ name: string; value?: string }>;
  envFrom?: Array<{ configMapRef?: { name: string } }>;
  ports: Array<{ name: string; containerPort: number }>;
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  securityContext: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean };
  volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}
interface Doc {
  kind: string;
  metadata: { name: string };
  spec?: {
    template?: {
      spec: {
        securityContext: { runAsNonRoot?: boolean; runAsUser?: number };
        containers: Container[];
        volumes: Array<{ name: string; secret?: { secretName: string } }>;
      };
    };
  };
}

const test = suite('kubernetes manifests');
const file = join(repoRoot, 'deploy/kubernetes/alcor-southbound.yaml');
const docs = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as Doc);
const version = (
  JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
    version: string;
  }
).version;
const workloads = docs.filter((d) => d.kind === 'StatefulSet' || d.kind === 'Deployment');

test('controllers, southbound modules and the fleet are all there', () => {
  assert.equal(workloads.map((w) => w.metadata.name).sort(), ['controller', 'nca', 'southbound']);
  assert.not.ok(
    docs.some((d) => d.kind === 'Secret'),
    'no Secret in the file: credentials are created apart',
  );
});

for (const w of workloads) {
  const pod = w.spec!.template!.spec;
  for (const c of pod.containers) {
    test(`${w.metadata.name}: the build's image and main, non-root, read-only`, () => {
      assert.is(c.image, `alcor-southbound/alcor:${version}`);
      const main = /^dist\/(services\/[a-z]+\/main)\.js$/.exec(c.args[0] ?? '');
      assert.ok(main, `runs a compiled service main: ${c.args[0]}`);
      assert.ok(existsSync(join(repoRoot, `${main[1]}.ts`)), `${main[1]}.ts exists`);
      assert.is(pod.securityContext.runAsNonRoot, true);
      assert.is(pod.securityContext.runAsUser, 10001, 'the images’ user');
      assert.is(c.securityContext.readOnlyRootFilesystem, true);
      assert.is(c.securityContext.allowPrivilegeEscalation, false);
    });
    test(`${w.metadata.name}: probes on the port the service serves them`, () => {
      const configMap = docs.find(
        (d) => d.kind === 'ConfigMap' && d.metadata.name === c.envFrom?.[0]?.configMapRef?.name,
      ) as unknown as { data: Record<string, string> } | undefined;
      assert.ok(configMap, 'its ConfigMap is in the file');
      const port = c.ports.find((p) => p.name === c.livenessProbe.httpGet.port);
      assert.is(port?.containerPort, Number(configMap.data.ALCOR_METRICS_PORT));
      assert.is(configMap.data.ALCOR_METRICS_HOST, '0.0.0.0', 'reachable by the kubelet');
      assert.is(c.livenessProbe.httpGet.path, '/healthz');
      assert.is(c.readinessProbe.httpGet.path, '/readyz');
      assert.is(c.readinessProbe.httpGet.port, c.livenessProbe.httpGet.port);
    });
    test(`${w.metadata.name}: every file a variable names is in a read-only Secret volume`, () => {
      const files = (c.env ?? []).filter(
        (e) => /(_FILE|_CREDENTIALS)$/.test(e.name) && e.value !== undefined,
      );
      assert.ok(files.length > 0);
      for (const e of files) {
        const mount = c.volumeMounts.find(
          (m) => e.value === m.mountPath || e.value!.startsWith(`${m.mountPath}/`),
        );
        assert.ok(mount, `${e.name}=${e.value} is under a mount`);
        assert.is(mount.readOnly, true);
        const volume = pod.volumes.find((v) => v.name === mount.name);
        assert.ok(volume?.secret?.secretName, `${mount.name} is a Secret`);
      }
    });
  }
}

test.run();
