// One NBD connection in transmission, on a serving thread's ring: requests pipelined, sends kept in
// order (one SEND in flight), one RECV always posted, replies matched by cookie, a deadline per
// request; a dropped socket is dialled again with backoff and what was in flight is sent again.
import { addressOf, native } from '../../native.js';
import type { Ring } from '../../uring/ring.js';
import * as SK from '../../uapi/socket.js';
import { UblkError } from '../../errors.js';
import * as P from './protocol.js';
import { ReplyParser, type Pending } from './replies.js';
import { dial, hangUp, msghdrOf, prepRecv, prepSend, prepSendmsg, type NbdAddress } from './socket.js';

interface Request extends Pending {
  /** With the request's length: a READ or WRITE's byte count as the target returns it. */
  resolve: (length: number) => void;
  reject: (e: Error) => void;
  started: number;
  abandoned: boolean;
  /** Header and payload as first encoded: sent again, unchanged, after a reconnect. */
  msg: Uint8Array;
  /** A FLUSH kept back after a reconnect until the replayed writes have their replies. */
  held?: boolean;
}

/** Where to dial again, and what the export must still look like there. */
export interface Redial {
  address: NbdAddress;
  exportName: string;
  info: P.ExportInfo;
}

// Enough for many replies per RECV; a READ's data is copied from here into its own buffer.
const RECV_BYTES = 1 << 20;
const BACKOFF_FIRST_MS = 50;
const BACKOFF_MAX_MS = 2000;
// A redial's handshake runs on the serving thread's ring without blocking it; a server that
// accepts and then says nothing is dropped after this long and dialled again after the backoff.
const REDIAL_HANDSHAKE_MS = 2000;

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

const WRITES = new Set([P.CMD_WRITE, P.CMD_TRIM, P.CMD_WRITE_ZEROES]);

export class Connection {
  private readonly inflight = new Map<number, Request>();
  private nextCookie = 1;
  /** Requests encoded and waiting for the SEND in flight to finish, in order. */
  private queued: Uint8Array[] = [];
  private queuedBytes = 0;
  private sending = false;
  private parser!: ReplyParser;
  /** For good: closed, a protocol error, or an export that changed under us. */
  private failure: UblkError | undefined;
  private readonly timer: ReturnType<typeof setInterval>;
  private closed = false;
  /** -1 while the socket is down and a redial is pending. */
  private fd: number;
  /** Bumped per socket: completions of a dead socket's ops are ignored. */
  private gen = 0;
  private backoff = BACKOFF_FIRST_MS;
  private redialTimer: ReturnType<typeof setTimeout> | undefined;
  /** Cookies of replayed writes still waiting for their replies; held FLUSHes go when it empties. */
  private replayedWrites = new Set<number>();
  /** Why the socket last went down; kept for the errors of requests that time out meanwhile. */
  private downWhy = '';

  constructor(
    private readonly ring: Ring,
    fd: number,
    private readonly timeoutMs: number,
    private readonly redial?: Redial,
  ) {
    this.fd = fd;
    this.timer = setInterval(() => this.expire(), Math.min(1000, Math.max(50, timeoutMs / 4)));
    this.timer.unref();
    this.up();
  }

  /** Sends one request; resolves with `length` when the server has answered it, rejects with the client's errno. */
  request(cmd: number, flags: number, offset: number, length: number, payload?: Uint8Array, buf?: Uint8Array): Promise<number> {
    if (this.failure) return Promise.reject(this.failure);
    const { req, done } = this.make(cmd, flags, offset, length, payload, buf);
    // While the socket is down the request waits in `inflight`; the reconnect sends it.
    if (this.fd >= 0) {
      this.enqueue(req.msg);
      if (!this.sending) this.send();
    }
    return done;
  }

  /** A request in `inflight` under a fresh cookie, not yet queued for sending. */
  private make(cmd: number, flags: number, offset: number, length: number, payload?: Uint8Array, buf?: Uint8Array): { req: Request; done: Promise<number> } {
    let cookie = this.nextCookie;
    while (this.inflight.has(cookie)) cookie = (cookie + 1) >>> 0 || 1;
    this.nextCookie = (cookie + 1) >>> 0 || 1;
    // The payload is copied now, not when the SEND in flight ends: by then a timed-out WRITE's
    // slot buffer may hold the next request's data, which would go to this request's offset.
    const msg = new Uint8Array(P.REQUEST_HEADER + (payload ? payload.byteLength : 0));
    P.encodeRequest(P.view(msg), 0, cmd, flags, cookie, offset, length);
    if (payload) msg.set(payload, P.REQUEST_HEADER);
    let req!: Request;
    const done = new Promise<number>((resolve, reject) => {
      req = { cmd, offset, length, buf, covered: 0, resolve, reject, started: Date.now(), abandoned: false, msg };
    });
    this.inflight.set(cookie, req);
    return { req, done };
  }

  private enqueue(b: Uint8Array): void {
    this.queued.push(b);
    this.queuedBytes += b.byteLength;
  }

  /**
   * Everything queued in one SENDMSG, in order and gathered by the kernel: sends stay few and no
   * payload is copied again (1 MiB writes queue up behind the send in flight).
   */
  private send(): void {
    const parts = this.queued;
    const total = this.queuedBytes;
    this.queued = [];
    this.queuedBytes = 0;
    this.sending = true;
    if (parts.length === 1) return this.sendFrom(parts[0], 0);
    const hdr = msghdrOf(parts);
    const fd = this.fd;
    const op = this.ring.op((v, o) => prepSendmsg(v, o, fd, addressOf(hdr), SK.MSG_NOSIGNAL | SK.MSG_WAITALL), [hdr, parts]);
    this.sent(op, total, (n) => this.sendFrom(concat(parts, total), n));
  }

  private sendFrom(out: Uint8Array, done: number): void {
    const at = addressOf(out) + done;
    const len = out.byteLength - done;
    const fd = this.fd;
    const op = this.ring.op((v, o) => prepSend(v, o, fd, at, len, SK.MSG_NOSIGNAL | SK.MSG_WAITALL), out.buffer);
    this.sent(op, len, (n) => this.sendFrom(out, done + n));
  }

  /** A SEND or SENDMSG of `len` bytes ends: `rest(n)` sends what a short one left after n; then what queued meanwhile. */
  private sent(op: Promise<number>, len: number, rest: (n: number) => void): void {
    const gen = this.gen;
    op.then((r) => {
      if (this.failure || gen !== this.gen) return;
      if (r < 0 && r !== -11 && r !== -4) return this.drop(`sending: ${UblkError.fromResult(r, 'send').code}`);
      if (r < len) return rest(Math.max(r, 0));
      this.sending = false;
      if (this.queued.length) this.send();
    });
  }

  /** A fresh socket: a fresh parser and receive buffer (a dead socket's RECV may still land in the old one). */
  private up(): void {
    this.parser = new ReplyParser((c) => this.inflight.get(c), (c, p, errno) => this.replied(c, p as Request, errno));
    this.recv(new Uint8Array(RECV_BYTES));
  }

  private recv(buf: Uint8Array): void {
    const gen = this.gen;
    const fd = this.fd;
    const addr = addressOf(buf);
    this.ring.op((v, o) => prepRecv(v, o, fd, addr, RECV_BYTES, 0), buf.buffer).then((r) => {
      if (this.failure || gen !== this.gen) return;
      if (r === 0) return this.drop('the server closed the connection');
      if (r === -11 || r === -4) return this.recv(buf);
      if (r < 0) return this.drop(`receiving: ${UblkError.fromResult(r, 'recv').code}`);
      try {
        this.parser.feed(buf.subarray(0, r));
      } catch (err) {
        return this.fail((err as Error).message);
      }
      this.recv(buf);
    });
  }

  private replied(cookie: number, req: Request, errno: string | undefined): void {
    this.inflight.delete(cookie);
    if (this.replayedWrites.delete(cookie) && this.replayedWrites.size === 0) this.releaseFlushes();
    if (req.abandoned) return;
    if (errno) req.reject(new UblkError(errno, `nbd: the server failed ${cmdName(req.cmd)} ${req.offset}+${req.length}: ${errno}`));
    else req.resolve(req.length);
  }

  /** Requests past the deadline fail with EIO; their cookies stay known so a late reply is dropped. */
  private expire(): void {
    const old = Date.now() - this.timeoutMs;
    for (const req of this.inflight.values()) {
      if (req.abandoned || req.started > old) continue;
      req.abandoned = true;
      req.buf = undefined;
      const down = this.fd < 0 ? `: the server is unreachable (${this.downWhy})` : '';
      req.reject(new UblkError('EIO', `nbd: no reply to ${cmdName(req.cmd)} ${req.offset}+${req.length} in ${this.timeoutMs / 1000}s${down}`));
    }
  }

  /** The socket broke: close it and dial again; every request not yet answered stays to be sent again. */
  private drop(why: string): void {
    if (!this.redial) return this.fail(why);
    this.gen++;
    native().close(this.fd);
    this.fd = -1;
    this.downWhy = why;
    this.queued = [];
    this.queuedBytes = 0;
    this.sending = false;
    this.backoff = BACKOFF_FIRST_MS;
    this.scheduleRedial(0);
  }

  private scheduleRedial(ms: number): void {
    this.redialTimer = setTimeout(() => void this.tryRedial(), ms);
  }

  private async tryRedial(): Promise<void> {
    this.redialTimer = undefined;
    if (this.failure || this.closed) return;
    const r = this.redial!;
    let got: Awaited<ReturnType<typeof dial>>;
    try {
      got = await dial(r.address, r.exportName, Math.min(this.timeoutMs, REDIAL_HANDSHAKE_MS), this.ring);
    } catch (err) {
      this.downWhy = (err as Error).message.replace(/^nbd: /, '');
      this.scheduleRedial(this.backoff);
      this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
      return;
    }
    if (this.failure || this.closed) return void native().close(got.fd);
    const was = r.info;
    const now = got.info;
    if (now.size !== was.size || now.flags !== was.flags || now.structured !== was.structured) {
      native().close(got.fd);
      const why = `nbd export '${r.exportName}' changed across a reconnect (size ${was.size} -> ${now.size}, flags 0x${was.flags.toString(16)} -> 0x${now.flags.toString(16)}): failing all IO`;
      console.error(`ublkit: ${why}`);
      return this.fail(why);
    }
    this.fd = got.fd;
    this.up();
    this.replay();
  }

  /**
   * Sends again, in their first order, the requests that never got a reply. Replies already taken
   * are never redone. FLUSHes wait until every replayed write is answered, so they cover them; a
   * FLUSH follows replayed writes even when none was asked, since the old server may have held
   * them in a cache that is now gone.
   */
  private replay(): void {
    this.replayedWrites.clear();
    let flushes = 0;
    for (const [cookie, req] of this.inflight) {
      if (req.abandoned) {
        this.inflight.delete(cookie);
        continue;
      }
      req.covered = 0;
      req.first = undefined;
      req.chunks = undefined;
      req.errno = undefined;
      req.held = req.cmd === P.CMD_FLUSH;
      if (req.held) flushes++;
      else {
        if (WRITES.has(req.cmd)) this.replayedWrites.add(cookie);
        this.enqueue(req.msg);
      }
    }
    const canFlush = (this.redial!.info.flags & (P.TF.HAS_FLAGS | P.TF.SEND_FLUSH)) === (P.TF.HAS_FLAGS | P.TF.SEND_FLUSH);
    if (canFlush && this.replayedWrites.size && !flushes) {
      const { req, done } = this.make(P.CMD_FLUSH, 0, 0, 0);
      req.held = true;
      done.catch(() => { /* nobody asked for it: its failure is nobody's */ });
    }
    if (!this.replayedWrites.size) this.releaseFlushes();
    if (this.queued.length && !this.sending) this.send();
  }

  private releaseFlushes(): void {
    if (this.fd < 0) return;
    for (const [cookie, req] of this.inflight) {
      if (!req.held) continue;
      req.held = false;
      // Never sent, so no late reply can come for it.
      if (req.abandoned) this.inflight.delete(cookie);
      else this.enqueue(req.msg);
    }
    if (this.queued.length && !this.sending) this.send();
  }

  /** For good: everything in flight and everything after fails with EIO. */
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
    if (this.redialTimer) clearTimeout(this.redialTimer);
    const healthy = !this.failure && this.fd >= 0 && this.inflight.size === 0;
    this.failure ??= new UblkError('EIO', 'nbd: connection closed');
    if (this.fd < 0) return;
    this.gen++;
    if (healthy) await hangUp(this.fd, 1000);
    else native().close(this.fd);
  }
}

function cmdName(cmd: number): string {
  return ['READ', 'WRITE', 'DISC', 'FLUSH', 'TRIM', 'CACHE', 'WRITE_ZEROES'][cmd] ?? `command ${cmd}`;
}
