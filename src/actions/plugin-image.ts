/**
 * The image of the restore init container when the plugin ConfigMap names none (restoreImage):
 * the plugin's own image, as Velero's pod or Deployment lists it among its init containers.
 */
import { hostname } from 'node:os';
import type { KubeClient } from '../kube/client.js';
import { KubeError } from '../kube/errors.js';

/** Velero's Deployment as `velero install` names it, whose init container carries the plugin's image (velero install --plugins). */
const VELERO_DEPLOYMENT = 'velero';
const IMAGE_NAME = 'velero-plugin-victoria';

/** The image (and pull policy) of the init container that installed this plugin, from Velero's pod, else its Deployment. */
export async function pluginImage(kube: KubeClient, veleroNamespace: string): Promise<{ image: string; imagePullPolicy?: string }> {
  const how = `set restoreImage in the plugin ConfigMap (velero/plugin-config.yaml), or install the plugin with \`velero plugin add <registry>/${IMAGE_NAME}:<tag>\``;
  // The plugin runs in Velero's own pod, whose init container installed it: that pod's spec names
  // the image whatever the Deployment is called (Helm names it after the release). Its name is
  // the host name, unless the pod uses the node's network; then the Deployment by its usual name.
  // A role that reads Deployments but not pods (written for versions that read only the Deployment) falls through to it.
  const sources: Array<{ what: string; read: () => Promise<Array<{ image?: string; name?: string; imagePullPolicy?: string }>>; forbiddenToo?: boolean }> = [
    { what: `pod ${hostname()}`, read: async () => (await kube.getPod(veleroNamespace, hostname())).spec?.initContainers ?? [], forbiddenToo: true },
    { what: `deployment ${VELERO_DEPLOYMENT}`, read: async () => (await kube.getDeployment(veleroNamespace, VELERO_DEPLOYMENT)).spec?.template?.spec?.initContainers ?? [] },
  ];
  const seen: string[] = [];
  for (const { what, read, forbiddenToo } of sources) {
    let inits;
    try {
      inits = await read();
    } catch (err) {
      if (err instanceof KubeError && (err.code === 'NotFound' || (forbiddenToo && err.code === 'Forbidden'))) {
        seen.push(err.code === 'NotFound' ? `no ${what}` : `${what} may not be read`);
        continue;
      }
      throw new Error(`cannot find the image for the restore init container: ${(err as Error).message}; ${how}`);
    }
    const ours = inits.find((c) => (c.image ?? '').includes(IMAGE_NAME));
    if (ours?.image) return { image: ours.image, ...(ours.imagePullPolicy ? { imagePullPolicy: ours.imagePullPolicy } : {}) };
    seen.push(`${what} has no init container with an image named ${IMAGE_NAME} (its init containers: ${inits.map((c) => c.image ?? c.name).join(', ') || 'none'})`);
  }
  throw new Error(`cannot find the image for the restore init container in namespace ${veleroNamespace}: ${seen.join('; ')}; ${how}`);
}
