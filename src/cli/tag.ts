/**
 * `trellis tag set|remove|list`: revision tags, as `istioctl tag` has them. A tag is a
 * MutatingWebhookConfiguration (`trellis-revision-tag-<tag>`) selecting namespaces labelled
 * `istio.io/rev=<tag>` and calling the webhook of the revision it points at (client config and CA
 * bundle copied from that revision's injector configuration). Moving a tag to another revision
 * (`trellis tag set prod --revision 1-3`) moves every pod created from then on in those
 * namespaces, without relabelling; running pods keep their proxy until restarted. Rollback is
 * setting it back.
 */
import { UsageError } from './args.ts';
import type { Verb } from './main.ts';
import { tag as spec } from './commands-kube.ts';
import { parseCommand, renderHelp } from './spec.ts';
import { KubeRest, apiStatus, loadKubeConfig } from '../config/store/kubernetes-rest.ts';
import type { KubeObject } from '../config/store/kubernetes-rest.ts';
import { RevisionLabel, TagLabel, injectorName, tagConfig, tagWebhookName } from '../control/webhook/webhook-config.ts';
import { applyClusterObject } from '../control/webhook/reconcile.ts';
import { renderTable } from './proxy-status.ts';
import { TrellisError } from '../errors.ts';

const MWC = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';

/** Points `tag` at `revision`; returns the revision it pointed at before (undefined if new). */
export async function setTag(rest: KubeRest, tag: string, revision: string): Promise<string | undefined> {
  if (tag === revision) throw new UsageError(`tag: a tag cannot have the name of the revision it points at ('${tag}')`);
  let injector: KubeObject;
  try {
    injector = await rest.request('GET', `${MWC}/${injectorName(revision)}`);
  } catch (err) {
    if (apiStatus(err) === 404) throw new TrellisError('REVISION_NOT_FOUND', `revision '${revision}' has no injector (${injectorName(revision)}); is 'trellis control --revision ${revision}' running?`);
    throw err;
  }
  const hooks = (injector.webhooks ?? []) as { clientConfig?: Record<string, unknown> }[];
  if (hooks[0]?.clientConfig === undefined) throw new TrellisError('REVISION_NOT_FOUND', `${injectorName(revision)} has no webhook`);
  let before: string | undefined;
  try {
    const old = await rest.request<KubeObject>('GET', `${MWC}/${tagWebhookName(tag)}`);
    before = old.metadata?.labels?.[RevisionLabel];
  } catch (err) {
    if (apiStatus(err) !== 404) throw err;
  }
  await applyClusterObject(rest, MWC, tagConfig(tag, revision, hooks[0].clientConfig), 'trellis-tag');
  return before;
}

export const verb: Verb = {
  async run(args) {
    const { values, positionals } = parseCommand(spec, args);
    if (positionals.length === 0) {
      process.stderr.write(renderHelp(spec));
      return 2;
    }
    const [action, tag] = positionals;
    const rest = new KubeRest(loadKubeConfig(values.kubeconfig));
    if (action === 'set') {
      if (tag === undefined || values.revision === undefined) throw new UsageError('tag set: needs TAG and --revision R');
      const before = await setTag(rest, tag, values.revision);
      process.stdout.write(before === undefined ? `tag ${tag} -> revision ${values.revision} (created)\n`
        : before === values.revision ? `tag ${tag} -> revision ${values.revision} (unchanged)\n`
          : `tag ${tag} -> revision ${values.revision} (was ${before}); new pods in istio.io/rev=${tag} namespaces get ${values.revision}\n`);
      return 0;
    }
    if (action === 'remove') {
      if (tag === undefined) throw new UsageError('tag remove: needs TAG');
      try {
        await rest.request('DELETE', `${MWC}/${tagWebhookName(tag)}`);
      } catch (err) {
        if (apiStatus(err) === 404) throw new TrellisError('TAG_NOT_FOUND', `tag '${tag}' does not exist`);
        throw err;
      }
      process.stdout.write(`tag ${tag} removed\n`);
      return 0;
    }
    if (action === 'list') {
      const list = await rest.request<{ items: KubeObject[] }>('GET', MWC, { query: { labelSelector: TagLabel } });
      const nss = await rest.request<{ items: KubeObject[] }>('GET', '/api/v1/namespaces', { query: { labelSelector: RevisionLabel } });
      const rows = list.items.map((c) => {
        const t = c.metadata?.labels?.[TagLabel] ?? '';
        const used = nss.items.filter((n) => n.metadata?.labels?.[RevisionLabel] === t).map((n) => n.metadata?.name ?? '');
        return [t, c.metadata?.labels?.[RevisionLabel] ?? '', used.join(',') || '-'];
      });
      process.stdout.write(rows.length === 0 ? 'No tags.\n' : renderTable(['TAG', 'REVISION', 'NAMESPACES'], rows));
      return 0;
    }
    throw new UsageError(`tag: unknown action '${action}' (set, remove, list)`);
  },
};
