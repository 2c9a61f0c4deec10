/** The example CronJobs of schedules/, read as the tests run them: their pod spec as written. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAll } from 'js-yaml';
import { ROOT } from './components.js';

export interface CronJobContainer {
  args: string[];
  env?: Array<{ name: string; value: string }>;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}

export interface CronJobPod {
  containers: CronJobContainer[];
  volumes?: Array<{ name: string; secret?: { secretName: string } }>;
}

/** The pod template of the CronJob in schedules/<file>. */
export function cronJobPod(file: string): CronJobPod {
  const docs = loadAll(readFileSync(join(ROOT, 'schedules', file), 'utf8')) as Array<{ kind?: string; spec?: { jobTemplate: { spec: { template: { spec: CronJobPod } } } } }>;
  const job = docs.find((d) => d?.kind === 'CronJob');
  if (!job?.spec) throw new Error(`schedules/${file} holds no CronJob`);
  return job.spec.jobTemplate.spec.template.spec;
}
