/**
 * The install manifests in velero/ and schedules/: every Velero resource validates against Velero's
 * own CRD schemas as strictly as the API server reads them (a misspelt field fails), every
 * kustomization builds with kubectl's kustomize, and what it renders carries the contract: the
 * companion sidecar with its volumes, environment and security context, the pod label, the hook
 * annotations, the Schedules' tiers and hooks, and the plugin ConfigMap's keys.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import { expect } from 'chai';
import { loadAll } from 'js-yaml';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { BACKUP_ACTION, KIND_LABEL, RESTORE_ACTION } from '../../src/actions/names.js';
import { DEFAULT_CONFIG, parsePluginConfig, PLUGIN_CONFIG_KEYS } from '../../src/actions/plugin-config.js';
import { paths, requireComponents, ROOT } from '../support/components.js';

/** Velero v1.18.1's CRDs, kept beside the repository (shared/velero-crds when the project is main/). */
const CRD_DIR = join(ROOT, '..', 'shared', 'velero-crds');
const MANIFEST_DIRS = [join(ROOT, 'velero'), join(ROOT, 'schedules')];

// ---- The contract (companion container, commands, ConfigMap keys; src/actions/names.ts for names) ----
const COMPANION = 'victoria-companion';
const EXECUTABLE = '/plugins/velero-plugin-victoria';
const PRE_COMMAND = [EXECUTABLE, 'companion', 'hook', 'pre'];
const POST_COMMAND = [EXECUTABLE, 'companion', 'hook', 'post'];
const HOOK_ANNOTATIONS: Record<string, string> = {
  'pre.hook.backup.velero.io/container': COMPANION,
  'pre.hook.backup.velero.io/command': JSON.stringify(PRE_COMMAND),
  'pre.hook.backup.velero.io/on-error': 'Fail',
  'pre.hook.backup.velero.io/timeout': '5m',
  'post.hook.backup.velero.io/container': COMPANION,
  'post.hook.backup.velero.io/command': JSON.stringify(POST_COMMAND),
  'post.hook.backup.velero.io/timeout': '2m',
};
const STATE_DIR = '/var/run/velero-plugin-victoria';
const DATA_DIR = '/victoria-data';
/** What each kind's companion talks to, and where the example bases keep their data. */
const KINDS = {
  metrics: { url: 'http://127.0.0.1:8428', hostPath: '/mnt/db1/victoriametrics' },
  logs: { url: 'http://127.0.0.1:9428', hostPath: '/mnt/db1/victorialogs' },
} as const;
/** The Schedule tiers: cron expression is free, the TTL is the retention promised in schedules/README.md. */
const TIERS: Record<string, string> = {
  'victoria-4hourly': '168h0m0s',
  'victoria-daily': '720h0m0s',
  'victoria-monthly': '8760h0m0s',
  'victoria-yearly': '26280h0m0s',
};

// ---- YAML and Kubernetes object helpers ----
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };
interface K8sObject extends JsonObject {
  apiVersion: string;
  kind: string;
  metadata: JsonObject & { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } };
}
interface Container {
  name: string;
  image?: string;
  imagePullPolicy?: string;
  command?: string[];
  env?: EnvVar[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: JsonObject;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}
interface Volume {
  name: string;
  hostPath?: { path: string; type?: string };
  emptyDir?: JsonObject;
}
interface PodTemplate {
  metadata: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { containers: Container[]; volumes?: Volume[]; hostNetwork?: boolean };
}
interface Deployment extends K8sObject {
  spec: JsonObject & { replicas?: number; strategy?: { type: string }; template: PodTemplate };
}

function parseDocs(text: string, source: string): K8sObject[] {
  const docs = loadAll(text).filter((d) => d !== null && d !== undefined);
  for (const d of docs) {
    expect(d, `${source}: every YAML document is an object`).to.be.an('object');
  }
  return docs as K8sObject[];
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
  );
}

const isKustomization = (f: string) => /^(kustomization\.ya?ml|Kustomization)$/.test(f.split('/').at(-1) ?? '');
const yamlFiles = () => MANIFEST_DIRS.flatMap(walk).filter((f) => /\.ya?ml$/.test(f) && !isKustomization(f));
const kustomizationFiles = () => MANIFEST_DIRS.flatMap(walk).filter(isKustomization).sort();
const rel = (f: string) => relative(ROOT, f);

function clone<T>(v: T): T {
  return structuredClone(v);
}

// ---- CRD schemas as the API server applies them, for ajv ----

/**
 * A Kubernetes structural schema (OpenAPI v3 with x-kubernetes-* extensions) as a JSON Schema with
 * the API server's behaviour: `nullable` admits null; `x-kubernetes-int-or-string` admits an integer
 * or a string; an object with `properties` and neither `additionalProperties` nor
 * `x-kubernetes-preserve-unknown-fields` rejects other fields (the API server prunes them, and
 * kubectl's default strict field validation refuses them: either way a misspelt field is lost);
 * an embedded resource also admits apiVersion/kind/metadata. Other x-kubernetes-* keywords (list
 * and map types, CEL rules) are dropped: ajv cannot evaluate them, and no Velero CRD uses CEL.
 */
function structuralToJsonSchema(node: Json): Json {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) return node;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith('x-kubernetes-') || key === 'nullable') continue;
    if (key === 'properties' || key === 'patternProperties' || key === 'definitions') {
      out[key] = Object.fromEntries(Object.entries(value as JsonObject).map(([k, v]) => [k, structuralToJsonSchema(v)]));
    } else if (key === 'items' || key === 'not' || (key === 'additionalProperties' && typeof value === 'object')) {
      out[key] = Array.isArray(value) ? value.map(structuralToJsonSchema) : structuralToJsonSchema(value);
    } else if (key === 'anyOf' || key === 'oneOf' || key === 'allOf') {
      out[key] = (value as Json[]).map(structuralToJsonSchema);
    } else {
      out[key] = value;
    }
  }
  if (node['x-kubernetes-int-or-string'] === true && out.anyOf === undefined) {
    delete out.type;
    out.anyOf = [{ type: 'integer' }, { type: 'string' }];
  }
  if (node['x-kubernetes-embedded-resource'] === true && out.properties && typeof out.properties === 'object') {
    const props = out.properties as JsonObject;
    for (const k of ['apiVersion', 'kind']) props[k] ??= { type: 'string' };
    props.metadata ??= { type: 'object' };
  }
  if (out.properties !== undefined && out.additionalProperties === undefined && node['x-kubernetes-preserve-unknown-fields'] !== true) {
    out.additionalProperties = false;
  }
  if (node.nullable === true) {
    if (typeof out.type === 'string') out.type = [out.type, 'null'];
    else if (out.type === undefined && Array.isArray(out.anyOf)) out.anyOf = [...out.anyOf, { type: 'null' }];
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
  }
  return out;
}

function newAjv(): Ajv {
  return new Ajv({
    strict: false,
    allErrors: true,
    // The formats Velero's CRDs use, checked roughly as the API server does.
    formats: {
      'date-time': /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/,
      byte: /^[A-Za-z0-9+/]*={0,2}$/,
      int32: true,
      int64: true,
      double: true,
      float: true,
    },
  });
}

/** One validator per served apiVersion/kind of the CRDs in CRD_DIR. */
function loadCrdValidators(): Map<string, ValidateFunction> {
  if (!existsSync(CRD_DIR)) {
    throw new Error(
      `Velero CRDs not found at ${CRD_DIR}: the manifest tests read Velero's CustomResourceDefinitions from ` +
        `../shared/velero-crds relative to the repository (shared/ beside main/).`,
    );
  }
  const ajv = newAjv();
  const validators = new Map<string, ValidateFunction>();
  for (const file of readdirSync(CRD_DIR).filter((f) => /\.ya?ml$/.test(f))) {
    for (const crd of parseDocs(readFileSync(join(CRD_DIR, file), 'utf8'), file)) {
      if (crd.kind !== 'CustomResourceDefinition') continue;
      const spec = crd.spec as { group: string; names: { kind: string }; versions: Array<{ name: string; schema: { openAPIV3Schema: Json } }> };
      for (const v of spec.versions) {
        validators.set(`${spec.group}/${v.name}/${spec.names.kind}`, ajv.compile(structuralToJsonSchema(v.schema.openAPIV3Schema) as JsonObject));
      }
    }
  }
  if (validators.size === 0) throw new Error(`no CustomResourceDefinition in ${CRD_DIR}`);
  return validators;
}

/** Validation errors of one Velero object (empty = valid). Unknown kinds are an error too. */
function crdErrors(validators: Map<string, ValidateFunction>, obj: K8sObject): string[] {
  const validate = validators.get(`${obj.apiVersion}/${obj.kind}`);
  if (!validate) return [`no CRD for ${obj.apiVersion} ${obj.kind} in ${CRD_DIR}`];
  if (validate(obj)) return [];
  return (validate.errors ?? []).map((e) => {
    const extra = e.keyword === 'additionalProperties' ? ` (${String((e.params as { additionalProperty: string }).additionalProperty)})` : '';
    return `${e.instancePath || '/'} ${e.message ?? e.keyword}${extra}`;
  });
}

// ---- kubectl kustomize ----
function kustomize(dir: string): K8sObject[] {
  const out = execFileSync(paths.kubectl, ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return parseDocs(out, `kubectl kustomize ${rel(dir)}`);
}

const kindOf = (d: Deployment) => d.spec.template.metadata.labels?.[KIND_LABEL] as keyof typeof KINDS | undefined;
const companionOf = (d: Deployment) => d.spec.template.spec.containers.find((c) => c.name === COMPANION);
const env = (c: Container, name: string) => c.env?.find((e) => e.name === name);

/** Everything the contract asks of a Deployment with the companion; `opts` for a user's own workload. */
function expectCompanion(
  d: Deployment,
  opts: { kind: keyof typeof KINDS; image: string; dataVolume: string; url?: string; secret?: string; app: string },
): void {
  const what = `Deployment ${d.metadata.name}`;
  const tpl = d.spec.template;
  expect(tpl.metadata.labels?.[KIND_LABEL], `${what}: pod label`).to.equal(opts.kind);
  for (const [k, v] of Object.entries(HOOK_ANNOTATIONS)) {
    expect(tpl.metadata.annotations?.[k], `${what}: annotation ${k}`).to.equal(v);
  }

  const containers = tpl.spec.containers;
  expect(containers.filter((c) => c.name === COMPANION), `${what}: one companion`).to.have.length(1);
  // `kubectl logs/exec` without -c keep reaching the database: the component appends the companion,
  // and the default-container annotation holds even after an overlay patch reordered the list.
  const app = containers.find((ct) => ct.name === opts.app);
  expect(app, `${what}: the workload's own container ${opts.app} is kept`).to.not.equal(undefined);
  expect(tpl.metadata.annotations?.['kubectl.kubernetes.io/default-container'], `${what}: default container`).to.equal(opts.app);
  const c = companionOf(d)!;
  expect(c.image, `${what}: companion image`).to.equal(opts.image);
  expect(c.command, `${what}: companion command`).to.deep.equal([EXECUTABLE, 'companion', 'serve']);
  expect(env(c, 'VICTORIA_KIND')?.value, `${what}: VICTORIA_KIND`).to.equal(opts.kind);
  expect(env(c, 'VICTORIA_URL')?.value, `${what}: VICTORIA_URL`).to.equal(opts.url ?? KINDS[opts.kind].url);
  expect(env(c, 'VICTORIA_DATA_DIR')?.value, `${what}: VICTORIA_DATA_DIR`).to.equal(DATA_DIR);
  for (const name of ['VICTORIA_AUTH_KEY', 'VICTORIA_FORCE_FLUSH_AUTH_KEY']) {
    const ref = env(c, name)?.valueFrom?.secretKeyRef;
    expect(env(c, name)?.value, `${what}: ${name} never inline`).to.equal(undefined);
    expect(ref?.optional, `${what}: ${name} from an optional Secret key`).to.equal(true);
    if (opts.secret) expect(ref?.name, `${what}: ${name} Secret`).to.equal(opts.secret);
  }
  const names = (c.env ?? []).map((e) => e.name);
  expect(new Set(names).size, `${what}: no duplicate env`).to.equal(names.length);

  expect(c.resources?.requests?.cpu, `${what}: cpu request`).to.be.a('string');
  expect(c.resources?.requests?.memory, `${what}: memory request`).to.be.a('string');
  expect(c.resources?.limits?.memory, `${what}: memory limit`).to.be.a('string');
  expect(c.securityContext, `${what}: companion securityContext`).to.deep.include({
    runAsNonRoot: true,
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
  });

  const volumes = new Map((tpl.spec.volumes ?? []).map((v) => [v.name, v]));
  const mounts = new Map((c.volumeMounts ?? []).map((m) => [m.mountPath, m]));
  const data = mounts.get(DATA_DIR);
  expect(data, `${what}: data volume at ${DATA_DIR}`).to.not.equal(undefined);
  expect(data?.readOnly, `${what}: the data volume is read-only in the companion`).to.equal(true);
  expect(data?.name, `${what}: the data volume`).to.equal(opts.dataVolume);
  expect(volumes.has(data!.name), `${what}: the companion mounts an existing volume (${data?.name})`).to.equal(true);
  const state = mounts.get(STATE_DIR);
  expect(state?.readOnly, `${what}: state dir writable`).to.not.equal(true);
  expect(volumes.get(state?.name ?? '')?.emptyDir, `${what}: state dir is an emptyDir`).to.be.an('object');
  for (const m of c.volumeMounts ?? []) expect(volumes.has(m.name), `${what}: volume ${m.name} exists`).to.equal(true);
  // The workload's own container still mounts the same data volume read-write.
  expect((app!.volumeMounts ?? []).some((m) => m.name === data?.name && !m.readOnly), `${what}: the database writes its data`).to.equal(true);
}

function expectHookCommand(json: string, phase: 'pre' | 'post', where: string): void {
  let cmd: unknown;
  expect(() => (cmd = JSON.parse(json)), `${where}: command is JSON`).to.not.throw();
  expect(cmd, `${where}: command is a JSON array of strings`).to.be.an('array');
  expect((cmd as unknown[]).every((s) => typeof s === 'string'), `${where}: strings only`).to.equal(true);
  expect(cmd, `${where}: runs the companion's ${phase} hook`).to.deep.equal(phase === 'pre' ? PRE_COMMAND : POST_COMMAND);
}

describe('manifests: Velero resources against Velero CRD schemas', function () {
  let validators: Map<string, ValidateFunction>;
  before(() => {
    validators = loadCrdValidators();
  });

  function veleroObjects(): Array<{ file: string; obj: K8sObject }> {
    // Every YAML file, including patch files (a JSON6902 patch is a list, not an object).
    return yamlFiles().flatMap((file) =>
      (loadAll(readFileSync(file, 'utf8')) as unknown[])
        .filter((d): d is K8sObject => typeof d === 'object' && d !== null && !Array.isArray(d))
        .filter((obj) => typeof obj.apiVersion === 'string' && obj.apiVersion.startsWith('velero.io/'))
        .map((obj) => ({ file, obj })),
    );
  }

  it('every Velero resource in velero/ and schedules/ validates against its CRD', () => {
    const found = veleroObjects();
    expect(found.map((f) => f.obj.metadata.name).sort(), 'the four Schedule tiers are there').to.include.members(Object.keys(TIERS));
    for (const { file, obj } of found) {
      expect(crdErrors(validators, obj).join('\n'), `${rel(file)}: ${obj.kind} ${obj.metadata.name}`).to.equal('');
    }
  });

  it('a misspelt field, a wrong enum value or a wrong type fails, as on the API server', () => {
    const schedule = veleroObjects().find((f) => f.obj.kind === 'Schedule')!.obj;
    expect(crdErrors(validators, schedule).join('\n')).to.equal('');
    const template = (s: K8sObject) => (s.spec as JsonObject).template as JsonObject;
    const firstPre = (s: K8sObject) =>
      ((((template(s).hooks as JsonObject).resources as JsonObject[])[0]!.pre as JsonObject[])[0]!.exec as JsonObject);

    const typo = clone(schedule);
    template(typo).snapshotVolume = false; // missing "s"
    expect(crdErrors(validators, typo).join('; ')).to.match(/\/spec\/template .*additional properties \(snapshotVolume\)/);

    const nested = clone(schedule);
    firstPre(nested).contianer = COMPANION;
    expect(crdErrors(validators, nested).join('; ')).to.include('(contianer)');

    const topLevel = clone(schedule);
    (topLevel.spec as JsonObject).ttl = '720h'; // belongs in spec.template
    expect(crdErrors(validators, topLevel).join('; ')).to.include('/spec must NOT have additional properties (ttl)');

    const badEnum = clone(schedule);
    firstPre(badEnum).onError = 'Abort';
    expect(crdErrors(validators, badEnum).join('; ')).to.include('must be equal to one of the allowed values');

    const badType = clone(schedule);
    template(badType).includedNamespaces = 'monitoring';
    expect(crdErrors(validators, badType).join('; ')).to.include('/spec/template/includedNamespaces must be array');

    const missing = clone(schedule);
    delete firstPre(missing).command;
    expect(crdErrors(validators, missing).join('; ')).to.include("must have required property 'command'");

    const unknownKind = clone(schedule);
    unknownKind.kind = 'Schedul';
    expect(crdErrors(validators, unknownKind).join('; ')).to.include('no CRD for velero.io/v1 Schedul');

    // What the API server accepts is accepted: null for a nullable field, free-form metadata.
    const nullable = clone(schedule);
    template(nullable).includedNamespaces = null;
    template(nullable).labelSelector = null;
    nullable.metadata.annotations = { anything: 'goes' };
    expect(crdErrors(validators, nullable).join('\n')).to.equal('');
  });

  it('the schema translation handles int-or-string, preserve-unknown-fields and embedded resources', () => {
    const ajv = newAjv();
    const validate = ajv.compile(
      structuralToJsonSchema({
        type: 'object',
        properties: {
          port: { 'x-kubernetes-int-or-string': true },
          free: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true, properties: { known: { type: 'string' } } },
          embedded: { type: 'object', 'x-kubernetes-embedded-resource': true, properties: { spec: { type: 'object' } } },
          mode: { type: 'string', enum: ['A', 'B'], nullable: true },
          list: { type: 'array', items: { type: 'object', properties: { a: { type: 'integer' } } }, 'x-kubernetes-list-type': 'atomic' },
        },
      }) as JsonObject,
    );
    for (const ok of [{ port: 8080 }, { port: 'http' }, { free: { known: 'x', other: 1 } }, { embedded: { apiVersion: 'v1', kind: 'Pod', metadata: {}, spec: {} } }, { mode: null }, { list: [{ a: 1 }] }]) {
      expect(validate(ok), JSON.stringify(ok)).to.equal(true);
    }
    for (const bad of [{ port: true }, { other: 1 }, { embedded: { spce: {} } }, { mode: 'C' }, { list: [{ b: 1 }] }]) {
      expect(validate(bad), JSON.stringify(bad)).to.equal(false);
    }
  });
});

describe('manifests: kustomize builds (kubectl kustomize)', function () {
  const built = new Map<string, K8sObject[]>();
  let validators: Map<string, ValidateFunction>;
  let work: string;

  before(function () {
    requireComponents(this, paths.kubectl);
    validators = loadCrdValidators();
    work = mkdtempSync(join(tmpdir(), 'manifests-'));
  });
  after(() => work && rmSync(work, { recursive: true, force: true }));

  const build = (dir: string) => {
    const key = join(ROOT, dir);
    if (!built.has(key)) built.set(key, kustomize(key));
    return built.get(key)!;
  };
  const deployments = (docs: K8sObject[]) => docs.filter((d): d is Deployment => d.kind === 'Deployment');

  it('every kustomization directory builds', () => {
    const files = kustomizationFiles();
    expect(files.map((f) => rel(dirname(f)))).to.include.members([
      'schedules',
      'velero',
      'velero/components/victoria-logs',
      'velero/components/victoria-metrics',
      'velero/examples/overlay',
      'velero/rbac',
    ]);
    for (const file of files) {
      const dir = dirname(file);
      const k = parseDocs(readFileSync(file, 'utf8'), rel(file))[0]!;
      const docs = build(rel(dir));
      if (k.kind === 'Component') {
        expect(k.apiVersion, `${rel(dir)}: a kustomize Component`).to.equal('kustomize.config.k8s.io/v1alpha1');
      } else {
        expect(docs.length, `${rel(dir)} renders resources`).to.be.greaterThan(0);
      }
    }
  });

  it('the example overlay adds the companion, label and hooks to both Victoria Deployments', () => {
    const docs = build('velero/examples/overlay');
    const deps = deployments(docs);
    expect(deps.map((d) => d.metadata.name).sort()).to.deep.equal(['victoria-logs', 'victoria-metrics']);
    for (const d of deps) {
      const kind = d.metadata.labels?.[KIND_LABEL] as keyof typeof KINDS;
      expect(kind, `${d.metadata.name}: Deployment label selects it for the component`).to.be.oneOf(['metrics', 'logs']);
      expect(d.metadata.namespace).to.equal('monitoring');
      expectCompanion(d, { kind, image: 'registry.example.com/velero-plugin-victoria:0.1.0', dataVolume: 'data', app: d.metadata.name });
      expect(d.spec.template.spec.containers.at(-1)?.name, `${d.metadata.name}: the companion is appended`).to.equal(COMPANION);
      // The example bases: single replica on a hostPath, host network, never two pods on the data.
      expect(d.spec.replicas).to.equal(1);
      expect(d.spec.strategy?.type).to.equal('Recreate');
      expect(d.spec.template.spec.hostNetwork).to.equal(true);
      const data = d.spec.template.spec.volumes?.find((v) => v.name === 'data');
      expect(data?.hostPath).to.deep.equal({ path: KINDS[kind].hostPath, type: 'DirectoryOrCreate' });
      // The pod selector is unchanged (immutable on a live Deployment): only the template gains the label.
      expect(((d.spec.selector as JsonObject).matchLabels as JsonObject)[KIND_LABEL]).to.equal(undefined);
    }
    expect(docs.find((d) => d.kind === 'Namespace')?.metadata.name).to.equal('monitoring');
  });

  it('hook commands (annotations and Schedules) are JSON arrays that run the companion in the companion container', () => {
    for (const d of deployments(build('velero/examples/overlay'))) {
      const a = d.spec.template.metadata.annotations ?? {};
      for (const phase of ['pre', 'post'] as const) {
        expectHookCommand(a[`${phase}.hook.backup.velero.io/command`] ?? '', phase, `${d.metadata.name} ${phase} annotation`);
        const container = a[`${phase}.hook.backup.velero.io/container`];
        expect(container).to.equal(COMPANION);
        expect(d.spec.template.spec.containers.some((c) => c.name === container), 'the named container exists').to.equal(true);
      }
    }
    for (const s of build('schedules')) {
      const resources = (((s.spec as JsonObject).template as JsonObject).hooks as JsonObject).resources as JsonObject[];
      expect(resources, `${s.metadata.name}: one hook spec`).to.have.length(1);
      for (const phase of ['pre', 'post'] as const) {
        const hooks = resources[0]![phase] as Array<{ exec: JsonObject }>;
        expect(hooks, `${s.metadata.name}: one ${phase} hook`).to.have.length(1);
        const exec = hooks[0]!.exec;
        expectHookCommand(JSON.stringify(exec.command), phase, `${s.metadata.name} ${phase} hook`);
        expect(exec.container).to.equal(COMPANION);
        expect(exec.onError).to.equal('Fail');
      }
      // The same timeouts as the annotations.
      for (const phase of ['pre', 'post'] as const) {
        const exec = (resources[0]![phase] as Array<{ exec: JsonObject }>)[0]!.exec;
        expect(exec.timeout, `${s.metadata.name} ${phase}`).to.equal(HOOK_ANNOTATIONS[`${phase}.hook.backup.velero.io/timeout`]);
      }
      expect(resources[0]!.includedResources).to.deep.equal(['pods']);
      expect(resources[0]!.labelSelector).to.deep.equal({ matchExpressions: [{ key: KIND_LABEL, operator: 'Exists' }] });
    }
  });

  it('the Schedules: four tiers with their TTLs, the label selector, no volume snapshots or fs-backup; valid as rendered', () => {
    const schedules = build('schedules');
    expect(schedules.map((s) => s.metadata.name).sort()).to.deep.equal(Object.keys(TIERS).sort());
    for (const s of schedules) {
      const what = `Schedule ${s.metadata.name}`;
      expect(crdErrors(validators, s).join('\n'), what).to.equal('');
      expect(s.metadata.namespace, `${what}: in Velero's namespace`).to.equal('velero');
      const spec = s.spec as JsonObject;
      expect(String(spec.schedule).trim().split(/\s+/), `${what}: a 5-field cron expression`).to.have.length(5);
      const t = spec.template as JsonObject;
      expect(t.ttl, `${what}: ttl`).to.equal(TIERS[s.metadata.name]);
      expect(t.includedNamespaces, `${what}: namespaces`).to.be.an('array').that.is.not.empty;
      expect(t.labelSelector, `${what}: selector`).to.deep.equal({ matchExpressions: [{ key: KIND_LABEL, operator: 'Exists' }] });
      expect(t.snapshotVolumes, `${what}: snapshotVolumes`).to.equal(false);
      expect(t.defaultVolumesToFsBackup, `${what}: defaultVolumesToFsBackup`).to.equal(false);
      // Velero resets a true here at the first reconcile and `schedule unpause` overwrites it: it would not last.
      expect(spec.skipImmediately, `${what}: skipImmediately left to Velero and the unpause command`).to.equal(undefined);
      // Velero copies the Schedule's labels to its backups (template.metadata.labels would replace them): only the
      // 4-hourly tier skips the count, and the drill picks a counted backup.
      expect((t.metadata as JsonObject | undefined)?.labels, `${what}: no template labels, so the Schedule's own reach its backups`).to.equal(undefined);
      const labels = (s.metadata as { labels?: Record<string, string> }).labels ?? {};
      expect(labels['velero-plugin-victoria.io/counts'], `${what}: counts label`).to.equal(s.metadata.name === 'victoria-4hourly' ? 'false' : undefined);
    }
    // Tiers never start at the same minute: each would otherwise wait for the other.
    const crons = schedules.map((s) => String((s.spec as JsonObject).schedule));
    const startHour = (c: string) => c.split(/\s+/)[1]!;
    expect(crons.filter((c) => startHour(c) !== '*/4').map(startHour).filter((h) => Number(h) % 4 === 0), 'other tiers are off the 4-hourly grid').to.deep.equal([]);
  });

  it('the plugin ConfigMap has exactly the keys of the contract, as strings, with the defaults', () => {
    const docs = build('velero');
    const cms = docs.filter((d) => d.kind === 'ConfigMap');
    expect(cms).to.have.length(1);
    const cm = cms[0]!;
    expect(cm.metadata.namespace).to.equal('velero');
    expect(cm.metadata.labels).to.deep.equal({ 'velero.io/plugin-config': '', [BACKUP_ACTION]: 'BackupItemAction', [RESTORE_ACTION]: 'RestoreItemAction' });
    // Exactly the plugin's keys, and the values shown are its defaults (the plugin's own parser reads them).
    expect(Object.keys(cm.data ?? {}).sort()).to.deep.equal([...PLUGIN_CONFIG_KEYS].sort());
    expect(parsePluginConfig(cm.data as Record<string, string>, 'velero/plugin-config.yaml')).to.deep.equal(DEFAULT_CONFIG);
    // Every key is documented by a comment in the source file.
    const source = readFileSync(join(ROOT, 'velero', 'plugin-config.yaml'), 'utf8').split('\n');
    for (const key of PLUGIN_CONFIG_KEYS) {
      const at = source.findIndex((l) => l.trimStart().startsWith(`${key}:`));
      expect(source[at - 1]?.trimStart().startsWith('#'), `comment above ${key}`).to.equal(true);
    }
  });

  it('the optional RBAC grants what the plugin uses, namespaced to Velero where possible', () => {
    const docs = build('velero/rbac');
    const rules = (kind: string) => (docs.find((d) => d.kind === kind)?.rules ?? []) as Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }>;
    const grants = (kind: string, resource: string, verb: string) => rules(kind).some((r) => r.resources.includes(resource) && r.verbs.includes(verb));
    for (const [resource, verb] of [['pods', 'get'], ['pods', 'list'], ['pods/exec', 'create'], ['pods/exec', 'get'], ['pods/log', 'get'], ['replicasets', 'get'], ['statefulsets', 'get'], ['daemonsets', 'get'], ['deployments', 'get']] as const) {
      expect(grants('ClusterRole', resource, verb), `ClusterRole: ${verb} ${resource}`).to.equal(true);
    }
    // Nothing the plugin does not do: it reads workloads, never lists or changes them.
    for (const verb of ['list', 'create', 'update', 'patch', 'delete']) {
      for (const resource of ['deployments', 'replicasets', 'statefulsets', 'daemonsets']) expect(grants('ClusterRole', resource, verb), `not cluster-wide: ${verb} ${resource}`).to.equal(false);
    }
    for (const [resource, verb] of [['backupstoragelocations', 'get'], ['backups', 'get'], ['secrets', 'get'], ['configmaps', 'list']] as const) {
      expect(grants('Role', resource, verb), `Role in velero: ${verb} ${resource}`).to.equal(true);
      expect(grants('ClusterRole', resource, verb), `not cluster-wide: ${verb} ${resource}`).to.equal(false);
    }
    expect(docs.find((d) => d.kind === 'Role')?.metadata.namespace).to.equal('velero');
  });

  it("a workload of one's own: other name, data volume, Secret and port through an overlay patch (velero/README.md)", () => {
    // A Deployment as a chart might render it: its own name and volume name, a non-default port,
    // plus one unrelated Deployment that must stay untouched.
    const dir = join(work, 'own');
    mkdirSync(join(dir, 'base'), { recursive: true });
    writeFileSync(
      join(dir, 'base', 'kustomization.yaml'),
      'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deployments.yaml]\n',
    );
    writeFileSync(
      join(dir, 'base', 'deployments.yaml'),
      `apiVersion: apps/v1
kind: Deployment
metadata: {name: vmsingle-main}
spec:
  selector: {matchLabels: {app: vm}}
  template:
    metadata: {labels: {app: vm}}
    spec:
      containers:
        - name: vmsingle
          image: victoriametrics/victoria-metrics:v1.145.0
          args: [-storageDataPath=/storage, -httpListenAddr=:9999]
          volumeMounts: [{name: server-volume, mountPath: /storage}]
      volumes:
        - name: server-volume
          hostPath: {path: /srv/vm, type: Directory}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: grafana}
spec:
  selector: {matchLabels: {app: grafana}}
  template:
    metadata: {labels: {app: grafana}}
    spec:
      containers: [{name: grafana, image: grafana/grafana}]
`,
    );
    // Layer 1 labels the Deployment (when its base cannot be edited); layer 2 adds the component
    // and adapts the companion with a strategic-merge patch, exactly as velero/README.md shows.
    mkdirSync(join(dir, 'labelled'));
    writeFileSync(
      join(dir, 'labelled', 'kustomization.yaml'),
      `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [../base]
patches:
  - target: {kind: Deployment, name: vmsingle-main}
    patch: |-
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: vmsingle-main
        labels: {velero-plugin-victoria.io/kind: metrics}
`,
    );
    mkdirSync(join(dir, 'overlay'));
    writeFileSync(
      join(dir, 'overlay', 'kustomization.yaml'),
      `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [../labelled]
components: [${relative(join(dir, 'overlay'), join(ROOT, 'velero', 'components', 'victoria-metrics'))}]
images:
  - {name: REGISTRY/velero-plugin-victoria, newName: ghcr.io/acme/velero-plugin-victoria, newTag: v1.2.3}
patches:
  - target: {kind: Deployment, name: vmsingle-main}
    patch: |-
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: vmsingle-main}
      spec:
        template:
          metadata:
            annotations: {kubectl.kubernetes.io/default-container: vmsingle}
          spec:
            containers:
              - name: victoria-companion
                env:
                  - {name: VICTORIA_URL, value: "http://127.0.0.1:9999"}
                  - name: VICTORIA_AUTH_KEY
                    valueFrom: {secretKeyRef: {name: vm-secrets, key: authKey, optional: true}}
                  - name: VICTORIA_FORCE_FLUSH_AUTH_KEY
                    valueFrom: {secretKeyRef: {name: vm-secrets, key: forceFlushAuthKey, optional: true}}
                volumeMounts:
                  - {mountPath: /victoria-data, name: server-volume}
`,
    );

    const deps = deployments(kustomize(join(dir, 'overlay')));
    const vm = deps.find((d) => d.metadata.name === 'vmsingle-main')!;
    expectCompanion(vm, {
      kind: 'metrics',
      image: 'ghcr.io/acme/velero-plugin-victoria:v1.2.3',
      dataVolume: 'server-volume',
      url: 'http://127.0.0.1:9999',
      secret: 'vm-secrets',
      app: 'vmsingle',
    });
    const grafana = deps.find((d) => d.metadata.name === 'grafana')!;
    expect(companionOf(grafana), 'an unlabelled Deployment gets no companion').to.equal(undefined);
    expect(grafana.spec.template.metadata.annotations, 'nor hook annotations').to.equal(undefined);
    expect(kindOf(grafana)).to.equal(undefined);
  });
});

describe('manifests: the install guide names paths that exist', function () {
  it('every kustomize directory and file path in docs/velero-install.md, velero/README.md and schedules/README.md exists', () => {
    for (const doc of ['docs/velero-install.md', 'velero/README.md', 'schedules/README.md']) {
      const text = readFileSync(join(ROOT, doc), 'utf8');
      const refs = [...text.matchAll(/(?:apply|delete|create|diff) -[kf] (\S+)|kubectl kustomize (\S+)/g)].map((m) => (m[1] ?? m[2])!);
      expect(refs, `${doc} names kustomize paths`).not.to.be.empty;
      for (const ref of refs) {
        if (/^["']?(https?:|-|<|\$)/.test(ref) || ref.includes('REGISTRY')) continue;
        const path = ref.replace(/[`'"),;]+$/, '');
        expect(existsSync(join(ROOT, path)), `${doc}: ${path}`).to.equal(true);
      }
    }
  });
});
