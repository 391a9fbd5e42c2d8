/**
 * Kubernetes label selectors (`matchLabels` + `matchExpressions`), the one matcher every user of
 * them shares: Gateway API `allowedRoutes.namespaces.selector` and Istio's `discoverySelectors`.
 * An unknown operator matches nothing, as the API server would refuse it.
 */

/** A metav1.LabelSelector. */
export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: ReadonlyArray<{ readonly key: string; readonly operator: string; readonly values?: readonly string[] }>;
}

/** True when every label in `selector` is carried by `labels` (an empty selector selects everything). */
export function selectorMatches(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

/**
 * Whether a workload policy's selector (PeerAuthentication, Telemetry `selector.matchLabels`) picks
 * a workload with `labels`: a policy without one, or with an empty one, is the namespace's policy,
 * not a workload's, so it picks no workload here (Istio's policy precedence).
 */
export function workloadPolicySelects(selector: Readonly<Record<string, string>> | undefined, labels: Readonly<Record<string, string>>): boolean {
  return selector !== undefined && Object.keys(selector).length > 0 && selectorMatches(selector, labels);
}

/** Whether `labels` satisfy every term of `sel` (an empty selector matches everything). */
export function labelSelectorMatches(sel: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const vals = e.values ?? [];
    switch (e.operator) {
      case 'In':
        if (!has || !vals.includes(labels[e.key])) return false;
        break;
      case 'NotIn':
        if (has && vals.includes(labels[e.key])) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}
