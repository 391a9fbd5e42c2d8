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
import { edsNamesOf } from '../../xds/references.ts';
import type { EncodedResource } from './resources.ts';

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
    if (allSubscribed(clusters, subscribed)) return [...rest];
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
    if (allSubscribed(clusters, subscribed)) this.#fire();
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

/** True when every EDS name of `clusters` is subscribed. */
function allSubscribed(clusters: ReadonlyMap<string, EncodedResource>, subscribed: (name: string) => boolean): boolean {
  for (const name of edsNamesOf([...clusters.values()].map((c) => c.json))) if (!subscribed(name)) return false;
  return true;
}
