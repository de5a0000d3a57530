/**
 * Makes amqplib write each batch of outgoing frames with one system call.
 *
 * amqplib's multiplexer drains its channels' frames (publishes, acks) in a
 * loop of `socket.write(frame)`, one system call per frame. On the 2-core
 * VMs Conveyor is measured on, those calls were the largest single cost of
 * the api (a quarter of its CPU at 3,000 submits/s) and of the worker's
 * acks. Corking the socket for the duration of one drain turns them into a
 * single writev; nothing is delayed past the drain that produced it.
 *
 * This reaches into amqplib internals (`connection.muxer._readIncoming`,
 * `connection.stream`), which is why amqplib is pinned to an exact version;
 * if their shape ever differs, it leaves the connection as it is.
 */
import type { ChannelModel } from 'amqplib';

interface MuxInternals {
  _readIncoming?: () => void;
}
interface ConnectionInternals {
  muxer?: MuxInternals;
  stream?: { cork(): void; uncork(): void };
}

/** True when the patch applied. */
export function coalesceWrites(model: ChannelModel): boolean {
  const connection = model.connection as unknown as ConnectionInternals;
  const { muxer, stream } = connection;
  const drain = muxer?._readIncoming;
  if (!muxer || !stream || typeof drain !== 'function') return false;
  muxer._readIncoming = function corkedDrain(this: MuxInternals) {
    stream.cork();
    try {
      drain.call(this);
    } finally {
      stream.uncork();
    }
  };
  return true;
}
