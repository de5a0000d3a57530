/**
 * Tells a Redis outage (503, retry later) from a bug (500). ioredis rejects
 * at once while disconnected (the api's client has no offline queue); Redis
 * itself answers some transient conditions with an error reply.
 */
import { Errors } from '../errors.js';
import { ReplyError } from 'ioredis';

/** Error replies that mean "not now" rather than "wrong command". */
const TRANSIENT_REPLY = /^(LOADING|BUSY|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|OOM|NOREPLICAS)\b/;

/** `error` as CNV_STORE_UNAVAILABLE when it is an outage; otherwise `error` itself (a 500). */
export function storeUnavailable(error: unknown): unknown {
  if (error instanceof ReplyError && !TRANSIENT_REPLY.test((error as Error).message)) return error;
  // Bad data in a record (unparsable JSON) or a bug of ours: not something a retry fixes.
  if (error instanceof SyntaxError || error instanceof TypeError || error instanceof RangeError) return error;
  return new Errors.STORE_UNAVAILABLE('try again later', { cause: error });
}
