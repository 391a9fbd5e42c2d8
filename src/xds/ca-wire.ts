/**
 * The certificate signing wire contract shared by the control plane's CA and the proxy's identity
 * agent: Istio's `istio.v1.auth.IstioCertificateService/CreateCertificate` (istio.io/api
 * security/v1alpha1/ca.proto): request {csr = 1, validity_duration = 3 (seconds), metadata = 4
 * (Struct)} and response {cert_chain = 1: leaf first, root last}. The caller authenticates with `authorization: Bearer <token>` gRPC metadata,
 * as Istio's agent does. Messages are defined inline with protobufjs (no codegen, no .proto file
 * to ship); metadata values are strings.
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import protobuf from 'protobufjs';

/** istio.v1.auth.IstioCertificateRequest, our JSON form. */
export interface CertificateRequestMsg {
  csr: string;
  /** Requested lifetime in seconds (0 = the CA's default). */
  validityDuration: number;
  metadata: Record<string, string>;
}

/** istio.v1.auth.IstioCertificateResponse. */
export interface CertificateResponseMsg {
  /** PEM certificates: the workload certificate, intermediates, and the root last. */
  certChain: string[];
}

const root = protobuf.Root.fromJSON({
  nested: {
    google: { nested: { protobuf: { nested: {
      Struct: { fields: { fields: { keyType: 'string', type: 'Value', id: 1 } } },
      Value: { oneofs: { kind: { oneof: ['stringValue'] } }, fields: { stringValue: { type: 'string', id: 3 } } },
    } } } },
    istio: { nested: { v1: { nested: { auth: { nested: {
      IstioCertificateRequest: { fields: { csr: { type: 'string', id: 1 }, validityDuration: { type: 'int64', id: 3 }, metadata: { type: 'google.protobuf.Struct', id: 4 } } },
      IstioCertificateResponse: { fields: { certChain: { rule: 'repeated', type: 'string', id: 1 } } },
    } } } } } },
  },
} as protobuf.INamespace);
const Req = root.lookupType('istio.v1.auth.IstioCertificateRequest');
const Res = root.lookupType('istio.v1.auth.IstioCertificateResponse');

function encodeRequest(m: CertificateRequestMsg): Buffer {
  const fields: Record<string, { stringValue: string }> = {};
  for (const [k, v] of Object.entries(m.metadata)) fields[k] = { stringValue: v };
  return Buffer.from(Req.encode(Req.fromObject({ csr: m.csr, validityDuration: m.validityDuration, metadata: { fields } })).finish());
}

function decodeRequest(b: Buffer): CertificateRequestMsg {
  const o = Req.toObject(Req.decode(b), { longs: Number, defaults: true }) as { csr: string; validityDuration: number; metadata?: { fields?: Record<string, { stringValue?: string }> } };
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(o.metadata?.fields ?? {})) if (typeof v.stringValue === 'string') metadata[k] = v.stringValue;
  return { csr: o.csr, validityDuration: o.validityDuration, metadata };
}

function encodeResponse(m: CertificateResponseMsg): Buffer {
  return Buffer.from(Res.encode(Res.fromObject(m)).finish());
}

function decodeResponse(b: Buffer): CertificateResponseMsg {
  const o = Res.toObject(Res.decode(b), { defaults: true }) as { certChain: string[] };
  return { certChain: o.certChain };
}

/** The gRPC service definition (server: addService; client: makeGenericClientConstructor). */
export const certificateServiceDefinition: ServiceDefinition = {
  CreateCertificate: {
    path: '/istio.v1.auth.IstioCertificateService/CreateCertificate',
    requestStream: false,
    responseStream: false,
    requestSerialize: encodeRequest,
    requestDeserialize: decodeRequest,
    responseSerialize: encodeResponse,
    responseDeserialize: decodeResponse,
  },
};
