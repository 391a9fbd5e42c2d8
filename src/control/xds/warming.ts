/**
 * "Make before break" for ADS pushes (Envoy's xDS docs, "Eventual consistency considerations"):
 * when a push adds clusters whose endpoints come from EDS, Envoy keeps them warming until their
 * ClusterLoadAssignment arrives, and it only asks for those names after it has processed the
 * CDS response. Sending the new listeners/routes in the same breath would point routes at
 * clusters that are not ready yet (503s). So LDS/RDS of such a push are held until the CDS
 * response is answered (ACK or NACK) and every EDS cluster is subscribed on the EDS stream
 * (which makes the server send its endpoints), or at most `maxHoldMs`.
 */
import { TypeUrl } from '../../xds/types.ts';
import type { EncodedResource } from './resources.ts';

/** Names an EDS cluster's endpoints are requested by (eds_cluster_config.service_name, else its name). */
export function edsNames(clusters: ReadonlyMap<string, EncodedResource>): string[] {
  const out: string[] = [];
  for (const [name, c] of clusters) {
    if (c.json.type !== 'EDS') continue;
    const svc = (c.json.eds_cluster_config as { service_name?: string } | undefined)?.service_name;
    out.push(svc !== undefined && svc !== '' ? svc : name);
  }
  return out;
}

const held: readonly string[] = [TypeUrl.Listener, TypeUrl.RouteConfiguration];

export class WarmingGate {
  readonly #held = new Set<string>();
  readonly #maxHoldMs: number;
  readonly #release: (types: string[]) => void;
  #timer: NodeJS.Timeout | undefined;

  /** `release` is called (once) with the held type URLs when they may go out. */
  constructor(maxHoldMs: number, release: (types: string[]) => void) {
    this.#maxHoldMs = maxHoldMs;
    this.#release = release;
  }

  isHeld(typeUrl: string): boolean {
    return this.#held.has(typeUrl);
  }

  /**
   * After a push sent CDS: returns which of `rest` to send now; LDS/RDS are held when some EDS
   * cluster is not subscribed yet.
   */
  afterCds(rest: readonly string[], subscribed: (name: string) => boolean, clusters: ReadonlyMap<string, EncodedResource>): string[] {
    if (edsNames(clusters).every(subscribed)) return [...rest];
    const now: string[] = [];
    for (const t of rest) {
      if (held.includes(t)) this.#held.add(t);
      else now.push(t);
    }
    if (this.#held.size > 0 && this.#timer === undefined) {
      this.#timer = setTimeout(() => this.#fire(), this.#maxHoldMs);
      this.#timer.unref();
    }
    return now;
  }

  /** Releases held types once CDS was answered and all EDS clusters are subscribed. */
  check(cdsAnswered: boolean, subscribed: (name: string) => boolean, clusters: ReadonlyMap<string, EncodedResource>): void {
    if (this.#held.size === 0 || !cdsAnswered) return;
    if (edsNames(clusters).every(subscribed)) this.#fire();
  }

  #fire(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#held.size === 0) return;
    const types = [...this.#held];
    this.#held.clear();
    this.#release(types);
  }

  close(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#held.clear();
  }
}
