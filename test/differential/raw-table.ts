/**
 * The fixed configuration of the raw differential: the HttpConnectionManager our control plane
 * generates for a gateway (src/control/translate/filters.ts: path normalization, request ids,
 * use_remote_address, the fault -> cors -> router chain), and a route table whose routes make
 * path and host handling visible: `/admin/` answers 403 (the policy a path trick must not get
 * around), `/b/` and `/exact` go to backend b, everything else to backend a, and the
 * `other.example` virtual host sends everything to b.
 */
import { hcmConfig } from '../../src/control/translate/filters.ts';
import type { XdsJson } from '../../src/xds/types.ts';
import { ROUTE_NAME } from './resources.ts';

/** Backend clusters of the raw differential. */
export const RAW_CLUSTERS = ['a', 'b'] as const;

/** The listener's connection manager, exactly as the control plane builds it for a gateway. */
export function rawHcm(): XdsJson {
  return hcmConfig({ statPrefix: 'diff-raw', routeConfigName: ROUTE_NAME, useRemoteAddress: true });
}

export const RAW_TABLE: XdsJson = {
  name: ROUTE_NAME,
  virtual_hosts: [
    {
      name: 'main',
      domains: ['diff.example', 'diff.example:*', '127.0.0.1', '127.0.0.1:*'],
      routes: [
        { match: { prefix: '/admin/' }, direct_response: { status: 403, body: { inline_string: 'RBAC: access denied' } } },
        { match: { prefix: '/admin' }, direct_response: { status: 403, body: { inline_string: 'RBAC: access denied' } } },
        { match: { prefix: '/b/' }, route: { cluster: 'b' } },
        { match: { path: '/exact' }, route: { cluster: 'b' } },
        { match: { prefix: '/' }, route: { cluster: 'a' } },
      ],
    },
    { name: 'other', domains: ['other.example', 'other.example:*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'b' } }] },
    { name: 'fallback', domains: ['*'], routes: [{ match: { prefix: '/admin' }, direct_response: { status: 403, body: { inline_string: 'RBAC: access denied' } } }, { match: { prefix: '/' }, route: { cluster: 'a' } }] },
  ],
};
