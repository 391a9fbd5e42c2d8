/** Kubernetes core and discovery specs as Trellis reads them (see ../views.ts). */

type Arr<T> = readonly T[];

/** A label map. */
export type Labels = Readonly<Record<string, string>>;

// ---- Kubernetes core ----

export interface ServicePort {
  readonly name?: string;
  readonly port?: number;
  readonly targetPort?: number | string;
  readonly protocol?: string;
  readonly appProtocol?: string;
}

export interface ServiceView {
  readonly selector?: Labels;
  readonly ports?: Arr<ServicePort>;
  readonly type?: string;
  readonly clusterIP?: string;
  readonly clusterIPs?: Arr<string>;
  readonly externalName?: string;
}

/** discovery.k8s.io EndpointSlice: its fields are top-level (read with `bodyView`). */
export interface EndpointSliceView {
  readonly addressType?: string;
  readonly endpoints?: Arr<{
    readonly addresses?: Arr<string>;
    readonly conditions?: { readonly ready?: boolean; readonly serving?: boolean; readonly terminating?: boolean };
    readonly zone?: string;
    readonly nodeName?: string;
    readonly hostname?: string;
    readonly targetRef?: { readonly kind?: string; readonly name?: string; readonly namespace?: string };
  }>;
  readonly ports?: Arr<{ readonly name?: string; readonly port?: number; readonly protocol?: string; readonly appProtocol?: string }>;
}
