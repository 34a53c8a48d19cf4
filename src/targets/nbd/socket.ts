// Sockets on io_uring: SOCKET/CONNECT/SEND/RECV encoders, and a dial that connects and shakes hands
// on a short-lived private ring (driven to completion here, so it works before any engine runs).
import { addressOf, native } from '../../native.js';
import { createRing, type Ring } from '../../uring/ring.js';
import { FileIo } from '../../uring/file-io.js';
import { prepRw, setOpFlags } from '../../uring/sqe.js';
import * as SK from '../../uapi/socket.js';
import { UblkError, errnoName } from '../../errors.js';
import { negotiate, type HandshakeStream } from './handshake.js';
import { CMD_DISC, REQUEST_HEADER, encodeRequest, view, type ExportInfo } from './protocol.js';

/** Where the server listens: a Unix socket path, or an IPv4 address and port. */
export interface NbdAddress {
  unix?: string;
  ipv4?: string;
  port?: number;
}

export function prepSocket(v: DataView, o: number, domain: number, type: number): void {
  prepRw(v, o, SK.IORING_OP_SOCKET, domain, 0, 0, type);
}

export function prepConnect(v: DataView, o: number, fd: number, addr: number, addrLen: number): void {
  prepRw(v, o, SK.IORING_OP_CONNECT, fd, addr, 0, addrLen);
}

export function prepSend(v: DataView, o: number, fd: number, addr: number, len: number, flags: number): void {
  prepRw(v, o, SK.IORING_OP_SEND, fd, addr, len, 0);
  setOpFlags(v, o, flags);
}

/**
 * A msghdr for SENDMSG of `parts` in order, its iovecs right after it: the kernel gathers them, no
 * copy into one buffer first. It and `parts` must live until the CQE.
 */
export function msghdrOf(parts: Uint8Array[]): Uint8Array {
  const b = new Uint8Array(SK.MSGHDR.size + parts.length * SK.IOVEC.size);
  const m = new DataView(b.buffer);
  const iov = SK.MSGHDR.size;
  m.setBigUint64(SK.MSGHDR.msg_iov, BigInt(addressOf(b) + iov), true);
  m.setBigUint64(SK.MSGHDR.msg_iovlen, BigInt(parts.length), true);
  for (let i = 0; i < parts.length; i++) {
    m.setBigUint64(iov + i * SK.IOVEC.size + SK.IOVEC.iov_base, BigInt(addressOf(parts[i])), true);
    m.setBigUint64(iov + i * SK.IOVEC.size + SK.IOVEC.iov_len, BigInt(parts[i].byteLength), true);
  }
  return b;
}

export function prepSendmsg(v: DataView, o: number, fd: number, msghdr: number, flags: number): void {
  prepRw(v, o, SK.IORING_OP_SENDMSG, fd, msghdr, 1, 0);
  setOpFlags(v, o, flags);
}

export function prepRecv(v: DataView, o: number, fd: number, addr: number, len: number, flags: number): void {
  prepRw(v, o, SK.IORING_OP_RECV, fd, addr, len, 0);
  setOpFlags(v, o, flags);
}

/** Cancels every request in flight on `fd` (a connect or receive that outlived its deadline). */
export function prepCancelFd(v: DataView, o: number, fd: number): void {
  prepRw(v, o, SK.IORING_OP_ASYNC_CANCEL, fd, 0, 0, 0);
  setOpFlags(v, o, SK.IORING_ASYNC_CANCEL_FD | SK.IORING_ASYNC_CANCEL_ALL);
}

export function describe(a: NbdAddress): string {
  return a.unix !== undefined ? `unix socket ${a.unix}` : `${a.ipv4}:${a.port}`;
}

/** Runs the handshake's socket ops one at a time, all under one deadline. */
interface Runner {
  /** The op's result; throws ETIMEDOUT past the deadline. `fd`: what to cancel then. */
  run(what: string, prep: (v: DataView, o: number) => void, keep: object | undefined, fd: number): Promise<number>;
  close(): void;
}

const noAnswer = (what: string): UblkError => new UblkError('ETIMEDOUT', `nbd: no answer from the server while ${what}`);

/**
 * A private ring driven to completion by blocking enters: for the dials made before any engine
 * runs (the CLI's probe, a serving thread's open), where there is no event loop to wait in.
 */
class Driven implements Runner {
  readonly ring: Ring = createRing(8, 0);
  private expired = false;
  private readonly ts = new BigInt64Array(2);

  constructor(timeoutMs: number) {
    void new FileIo(this.ring).sleep(timeoutMs * 1e6, this.ts).then(() => {
      this.expired = true;
    });
  }

  async run(what: string, prep: (v: DataView, o: number) => void, keep?: object): Promise<number> {
    let settled = false;
    let res = 0;
    void this.ring.op(prep, keep).then((r) => {
      settled = true;
      res = r;
    });
    for (;;) {
      // Let the CQEs reaped last time resolve their promises before looking.
      await new Promise<void>((r) => setImmediate(r));
      if (settled) return res;
      if (this.expired) throw noAnswer(what);
      const n = this.ring.submit(1, true);
      if (n < 0 && n !== -4) throw UblkError.fromResult(n, 'io_uring_enter');
      this.ring.reap(() => {});
    }
  }

  close(): void {
    this.ring.close();
  }
}

/**
 * The ops on a ring that an engine already pumps (a serving thread's, for a reconnect): the thread
 * keeps serving its other connections and queues while the server takes its time to answer. Past
 * the deadline the op is cancelled, and waited for, since the kernel may still be writing its buffer.
 */
class OnRing implements Runner {
  private readonly end: number;

  constructor(private readonly ring: Ring, timeoutMs: number) {
    this.end = Date.now() + timeoutMs;
  }

  async run(what: string, prep: (v: DataView, o: number) => void, keep: object | undefined, fd: number): Promise<number> {
    const op = this.ring.op(prep, keep);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), Math.max(0, this.end - Date.now()));
    });
    const first = await Promise.race([op.then((r) => ({ r })), late]);
    clearTimeout(timer);
    if (first) return first.r;
    if (fd >= 0) void this.ring.op((v, o) => prepCancelFd(v, o, fd));
    await op;
    throw noAnswer(what);
  }

  close(): void { /* the ring is the engine's */ }
}

function streamOn(d: Runner, fd: number): HandshakeStream {
  return {
    async read(n) {
      const b = new Uint8Array(n);
      let have = 0;
      while (have < n) {
        const at = addressOf(b) + have;
        const r = await d.run('reading the handshake', (v, o) => prepRecv(v, o, fd, at, n - have, SK.MSG_WAITALL), b.buffer, fd);
        if (r === 0) throw new UblkError('ECONNRESET', 'nbd: the server closed the connection during the handshake');
        if (r < 0) throw UblkError.fromResult(r, 'nbd: receiving the handshake');
        have += r;
      }
      return b;
    },
    async write(b) {
      let done = 0;
      while (done < b.byteLength) {
        const at = addressOf(b) + done;
        const r = await d.run('sending the handshake', (v, o) => prepSend(v, o, fd, at, b.byteLength - done, SK.MSG_NOSIGNAL), b.buffer, fd);
        if (r <= 0) throw r === 0 ? new UblkError('ECONNRESET', 'nbd: the server closed the connection during the handshake') : UblkError.fromResult(r, 'nbd: sending the handshake');
        done += r;
      }
    },
  };
}

function connectError(res: number, a: NbdAddress): UblkError {
  const name = errnoName(res);
  const why = name === 'ENOENT' ? 'no such socket' : name === 'ECONNREFUSED' ? 'connection refused' : name;
  return new UblkError(name, `nbd: cannot connect to ${describe(a)}: ${why}`);
}

/** Sends NBD_CMD_DISC (no reply comes) and closes `fd`; best effort, bounded by `timeoutMs`. */
export async function hangUp(fd: number, timeoutMs: number): Promise<void> {
  const d = new Driven(timeoutMs);
  try {
    const b = new Uint8Array(REQUEST_HEADER);
    encodeRequest(view(b), 0, CMD_DISC, 0, 0, 0, 0);
    await streamOn(d, fd).write(b);
  } catch { /* the server is gone already: nothing to tell it */ } finally {
    d.close();
    native().close(fd);
  }
}

/**
 * A connected socket fd past the handshake, and what the server said about the export. On `ring`
 * (one an engine pumps) the dial waits without blocking the thread; without, on a private ring.
 */
export async function dial(a: NbdAddress, exportName: string, timeoutMs: number, ring?: Ring): Promise<{ fd: number; info: ExportInfo }> {
  const d: Runner = ring ? new OnRing(ring, timeoutMs) : new Driven(timeoutMs);
  let fd = -1;
  try {
    const unix = a.unix !== undefined;
    const sa = unix ? SK.encodeSockaddrUn(a.unix!) : SK.encodeSockaddrIn(a.ipv4!, a.port!);
    fd = await d.run('creating a socket', (v, o) => prepSocket(v, o, unix ? SK.AF_UNIX : SK.AF_INET, SK.SOCK_STREAM | SK.SOCK_CLOEXEC), undefined, -1);
    if (fd < 0) throw UblkError.fromResult(fd, 'nbd: socket');
    const at = addressOf(sa);
    const r = await d.run(`connecting to ${describe(a)}`, (v, o) => prepConnect(v, o, fd, at, sa.byteLength), sa.buffer, fd);
    if (r < 0) throw connectError(r, a);
    const info = await negotiate(streamOn(d, fd), exportName);
    return { fd, info };
  } catch (err) {
    if (fd >= 0) native().close(fd);
    throw err;
  } finally {
    d.close();
  }
}
