// One NBD connection in transmission, on a serving thread's ring: requests pipelined, sends kept in
// order (one SEND in flight), one RECV always posted, replies matched by cookie, a deadline per request.
import { addressOf, native } from '../../native.js';
import type { Ring } from '../../uring/ring.js';
import * as SK from '../../uapi/socket.js';
import { UblkError } from '../../errors.js';
import * as P from './protocol.js';
import { ReplyParser, type Pending } from './replies.js';
import { hangUp, prepRecv, prepSend } from './socket.js';

interface Request extends Pending {
  resolve: () => void;
  reject: (e: Error) => void;
  started: number;
  abandoned: boolean;
}

// Enough for many replies per RECV; a READ's data is copied from here into its own buffer.
const RECV_BYTES = 1 << 20;

export class Connection {
  private readonly inflight = new Map<number, Request>();
  private nextCookie = 1;
  /** Requests encoded and waiting for the SEND in flight to finish, in order. */
  private queued: Uint8Array[] = [];
  private queuedBytes = 0;
  private sending = false;
  private readonly recvBuf = new Uint8Array(RECV_BYTES);
  private readonly recvAddr = addressOf(this.recvBuf);
  private readonly parser: ReplyParser;
  private failure: UblkError | undefined;
  private readonly timer: ReturnType<typeof setInterval>;
  private closed = false;

  constructor(private readonly ring: Ring, private readonly fd: number, private readonly timeoutMs: number) {
    this.parser = new ReplyParser((c) => this.inflight.get(c), (c, p, errno) => this.replied(c, p as Request, errno));
    this.timer = setInterval(() => this.expire(), Math.min(1000, Math.max(50, timeoutMs / 4)));
    this.timer.unref();
    this.recv();
  }

  /** Sends one request; resolves when the server has answered it, rejects with the client's errno. */
  request(cmd: number, flags: number, offset: number, length: number, payload?: Uint8Array, buf?: Uint8Array): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    let cookie = this.nextCookie;
    while (this.inflight.has(cookie)) cookie = (cookie + 1) >>> 0 || 1;
    this.nextCookie = (cookie + 1) >>> 0 || 1;
    // The payload is copied now, not when the SEND in flight ends: by then a timed-out WRITE's
    // slot buffer may hold the next request's data, which would go to this request's offset.
    const msg = new Uint8Array(P.REQUEST_HEADER + (payload ? payload.byteLength : 0));
    P.encodeRequest(P.view(msg), 0, cmd, flags, cookie, offset, length);
    if (payload) msg.set(payload, P.REQUEST_HEADER);
    return new Promise<void>((resolve, reject) => {
      this.inflight.set(cookie, { cmd, offset, length, buf, covered: 0, resolve, reject, started: Date.now(), abandoned: false });
      this.enqueue(msg);
      if (!this.sending) this.send();
    });
  }

  private enqueue(b: Uint8Array): void {
    this.queued.push(b);
    this.queuedBytes += b.byteLength;
  }

  /** Everything queued in one SEND: one copy, but the stream stays in order and sends stay few. */
  private send(): void {
    const parts = this.queued;
    const out = parts.length === 1 ? parts[0] : new Uint8Array(this.queuedBytes);
    if (parts.length > 1) {
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.byteLength;
      }
    }
    this.queued = [];
    this.queuedBytes = 0;
    this.sending = true;
    this.sendFrom(out, 0);
  }

  private sendFrom(out: Uint8Array, done: number): void {
    const at = addressOf(out) + done;
    const len = out.byteLength - done;
    this.ring.op((v, o) => prepSend(v, o, this.fd, at, len, SK.MSG_NOSIGNAL | SK.MSG_WAITALL), out.buffer).then((r) => {
      if (this.failure) return;
      if (r < 0 && r !== -11 && r !== -4) return this.fail(`sending: ${UblkError.fromResult(r, 'send').code}`);
      if (r < len) return this.sendFrom(out, done + Math.max(r, 0));
      this.sending = false;
      if (this.queued.length) this.send();
    });
  }

  private recv(): void {
    this.ring.op((v, o) => prepRecv(v, o, this.fd, this.recvAddr, RECV_BYTES, 0), this.recvBuf.buffer).then((r) => {
      if (this.failure) return;
      if (r === 0) return this.fail('the server closed the connection');
      if (r === -11 || r === -4) return this.recv();
      if (r < 0) return this.fail(`receiving: ${UblkError.fromResult(r, 'recv').code}`);
      try {
        this.parser.feed(this.recvBuf.subarray(0, r));
      } catch (err) {
        return this.fail((err as Error).message);
      }
      this.recv();
    });
  }

  private replied(cookie: number, req: Request, errno: string | undefined): void {
    this.inflight.delete(cookie);
    if (req.abandoned) return;
    if (errno) req.reject(new UblkError(errno, `nbd: the server failed ${cmdName(req.cmd)} ${req.offset}+${req.length}: ${errno}`));
    else req.resolve();
  }

  /** Requests past the deadline fail with EIO; their cookies stay known so a late reply is dropped. */
  private expire(): void {
    const old = Date.now() - this.timeoutMs;
    for (const req of this.inflight.values()) {
      if (req.abandoned || req.started > old) continue;
      req.abandoned = true;
      req.buf = undefined;
      req.reject(new UblkError('EIO', `nbd: no reply to ${cmdName(req.cmd)} ${req.offset}+${req.length} in ${this.timeoutMs / 1000}s`));
    }
  }

  /** A broken connection fails everything in flight and everything after with EIO (no reconnect yet). */
  private fail(why: string): void {
    if (this.failure) return;
    this.failure = new UblkError('EIO', `nbd: connection lost: ${why}`);
    for (const req of this.inflight.values()) if (!req.abandoned) req.reject(this.failure);
    this.inflight.clear();
  }

  /** Says goodbye (NBD_CMD_DISC) on a connection that still works, then closes it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    const healthy = !this.failure && this.inflight.size === 0;
    this.failure ??= new UblkError('EIO', 'nbd: connection closed');
    if (healthy) await hangUp(this.fd, 1000);
    else native().close(this.fd);
  }
}

function cmdName(cmd: number): string {
  return ['READ', 'WRITE', 'DISC', 'FLUSH', 'TRIM', 'CACHE', 'WRITE_ZEROES'][cmd] ?? `command ${cmd}`;
}
