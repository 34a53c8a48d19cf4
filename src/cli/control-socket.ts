// Each device's daemon answers on a Unix socket only root can open: one JSON request per line
// ({"cmd":"stats"}), one JSON reply per line ({"ok":true,"stats":{...}} or {"ok":false,"error"}).
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { UblkError } from '../errors.js';

/** Where the sockets live; UBLKIT_RUN_DIR moves it (tests as a user). */
export function runDir(): string {
  return process.env.UBLKIT_RUN_DIR || '/run/ublkit';
}

export function socketPath(id: number): string {
  return path.join(runDir(), `ublkb${id}.sock`);
}

/** Ids that have a socket in the run directory, in order. */
export function socketIds(): number[] {
  let names: string[] = [];
  try {
    names = fs.readdirSync(runDir());
  } catch { /* none yet */ }
  return names.map((n) => /^ublkb(\d+)\.sock$/.exec(n)).filter((m) => m).map((m) => Number(m![1])).sort((x, y) => x - y);
}

/** A request line longer than this is refused: nothing the protocol asks for is near it. */
const MAX_LINE = 4096;

export type Handler = (req: Record<string, unknown>) => unknown;

/** What the daemon answers to each command. */
export function answer(line: string, handlers: Record<string, Handler>): string {
  let req: unknown;
  try {
    req = JSON.parse(line);
  } catch {
    return JSON.stringify({ ok: false, error: 'the request is not JSON' }) + '\n';
  }
  const cmd = req && typeof req === 'object' ? (req as { cmd?: unknown }).cmd : undefined;
  if (typeof cmd !== 'string' || !Object.prototype.hasOwnProperty.call(handlers, cmd)) {
    return JSON.stringify({ ok: false, error: `unknown command ${JSON.stringify(cmd ?? null)}; known: ${Object.keys(handlers).join(', ')}` }) + '\n';
  }
  try {
    return JSON.stringify({ ok: true, [cmd]: handlers[cmd](req as Record<string, unknown>) }) + '\n';
  } catch (e) {
    return JSON.stringify({ ok: false, error: (e as Error).message }) + '\n';
  }
}

/**
 * Listens on device `id`'s socket (a stale one from a dead daemon is replaced); the directory is
 * 0700 and the socket 0600, so only root reaches it. Resolves with a close() that removes it.
 */
export async function listenControl(id: number, handlers: Record<string, Handler>): Promise<() => void> {
  const dir = runDir();
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  const file = socketPath(id);
  fs.rmSync(file, { force: true });
  const server = net.createServer((conn) => {
    let text = '';
    conn.setEncoding('utf8');
    conn.on('error', () => {});
    conn.on('data', (d: string) => {
      text += d;
      let nl: number;
      while ((nl = text.indexOf('\n')) >= 0) {
        const line = text.slice(0, nl);
        text = text.slice(nl + 1);
        conn.write(answer(line, handlers));
      }
      if (text.length > MAX_LINE) {
        conn.end(JSON.stringify({ ok: false, error: `request line over ${MAX_LINE} bytes` }) + '\n');
        text = '';
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(file, () => resolve());
  });
  fs.chmodSync(file, 0o600);
  // The daemon must not stay alive for its socket alone.
  server.unref();
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    server.close();
    try {
      // Only our own socket: a daemon started since for the same id may have replaced it.
      if (fs.statSync(file).ino === ino) fs.rmSync(file, { force: true });
    } catch { /* already gone */ }
  };
  const ino = fs.statSync(file).ino;
  process.once('exit', close);
  return close;
}

/** Sends one request to device `id`'s daemon and returns its reply's `cmd` field; bounded. */
export function ask(id: number, cmd: string, timeoutMs = 5000): Promise<unknown> {
  const file = socketPath(id);
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(file);
    let text = '';
    const timer = setTimeout(() => fail(new UblkError('ETIMEDOUT', `device ${id}: its daemon did not answer within ${timeoutMs / 1000} s`)), timeoutMs);
    const fail = (e: Error) => {
      clearTimeout(timer);
      conn.destroy();
      reject(e);
    };
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(JSON.stringify({ cmd }) + '\n'));
    conn.on('error', (e: NodeJS.ErrnoException) => fail(connectError(id, file, e)));
    conn.on('data', (d: string) => {
      text += d;
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      conn.end();
      let r: { ok?: boolean; error?: string } & Record<string, unknown>;
      try {
        r = JSON.parse(text.slice(0, nl));
      } catch {
        return reject(new UblkError('EPROTO', `device ${id}: its daemon's reply is not JSON`));
      }
      if (!r.ok) return reject(new UblkError('EIO', `device ${id}: ${r.error ?? 'the daemon refused the request'}`));
      resolve(r[cmd]);
    });
    conn.on('end', () => fail(new UblkError('EPROTO', `device ${id}: its daemon closed the connection without a reply`)));
  });
}

function connectError(id: number, file: string, e: NodeJS.ErrnoException): UblkError {
  if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') return new UblkError('ENODEV', `device ${id}: no such device served by a ublkit daemon (no ${file})`);
  if (e.code === 'EACCES' || e.code === 'EPERM') return new UblkError('EPERM', `device ${id}: ${file}: permission denied (root only)`);
  return new UblkError('EIO', `device ${id}: ${file}: ${e.message}`);
}
