/**
 * `trellis manifest --revision R`: prints the control plane of one revision as Kubernetes objects
 * (multi-document YAML) for `kubectl apply -f -`, the same objects charts/trellis renders with the
 * same values. The CRDs are charts/trellis-base's; a gateway is charts/trellis-gateway's.
 */
import { stringify } from 'yaml';
import { UsageError } from './args.ts';
import type { Verb } from './main.ts';
import { manifest as spec } from './commands-kube.ts';
import { parseCommand } from './spec.ts';
import { DefaultManifestOptions, controlPlaneManifest } from '../control/kube/manifest.ts';

export const verb: Verb = {
  async run(args) {
    const { values } = parseCommand(spec, args);
    const revision = values.revision ?? 'default';
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(revision)) throw new UsageError(`manifest: --revision must be a DNS label (e.g. 1-3), got '${revision}'`);
    const replicas = values.replicas === undefined ? DefaultManifestOptions.replicas : Number(values.replicas);
    if (!Number.isInteger(replicas) || replicas < 1) throw new UsageError(`manifest: --replicas must be a positive integer, got '${values.replicas}'`);
    const objects = controlPlaneManifest({
      ...DefaultManifestOptions,
      revision,
      namespace: values.namespace ?? DefaultManifestOptions.namespace,
      image: values.image ?? DefaultManifestOptions.image,
      replicas,
      holdApplicationUntilProxyStarts: values['hold-application-until-proxy-starts'] ?? false,
      validateUnlabelled: values['validate-unlabelled'] ?? false,
    });
    process.stdout.write(objects.map((o) => stringify(o, { aliasDuplicateObjects: false })).join('---\n'));
    return 0;
  },
};
