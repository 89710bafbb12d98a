/**
 * The gRPC error the local swap server answers with (status code, details, optional metadata).
 *
 * @module
 */
import type * as grpc from "@grpc/grpc-js";

/** A gRPC status to answer a call with. */
export class StatusError extends Error {
  /**
   * @param code gRPC status code
   * @param details the status message the client sees
   * @param metadata trailers (e.g. the L402 challenge)
   */
  constructor(readonly code: number, readonly details: string, readonly metadata?: grpc.Metadata) {
    super(details);
    this.name = "StatusError";
  }
}
