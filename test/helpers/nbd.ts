// nbdkit started and stopped at will on a socket path, and an nbd target opened on a host ring (no
// ublk device): the pieces of the nbd tests.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { waitFor } from './kernel.js';
import { hostContext } from '../../src/testing/host.js';
import { create, prepare, type NbdConfig } from '../../src/targets/nbd/index.js';
import type { Target } from '../../src/target/types.js';

/** Prepares and opens the target for `config`, runs `body`, and closes both target and ring. */
export async function withNbdTarget(config: NbdConfig, body: (t: Target) => Promise<void>): Promise<void> {
  const t = create(await prepare(config));
  const host = await hostContext();
  try {
    await t.open!(host.ctx);
    await body(t);
  } finally {
    await t.close?.();
    host.close();
  }
}

/** nbdkit on one socket path, started and stopped at will; a SIGKILLed one leaves its socket file behind. */
export class Kit {
  private p: ChildProcess | undefined;
  private exited = true;
  private said = '';
  private how = '';
  constructor(readonly sock: string) {}

  /** For a failure's message: whether nbdkit still runs, how it ended, what it said last. */
  status(): string {
    return `nbdkit ${this.exited ? `exited (${this.how})` : 'running'}${this.said ? `, said: ${this.said.trim()}` : ''}`;
  }

  async start(args: string[]): Promise<void> {
    fs.rmSync(this.sock, { force: true });
    fs.rmSync(`${this.sock}.pid`, { force: true });
    this.exited = false;
    this.said = '';
    const p = spawn('nbdkit', ['--unix', this.sock, '-P', `${this.sock}.pid`, '--foreground', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    p.stderr!.on('data', (d: Buffer) => void (this.said = (this.said + d.toString()).slice(-2000)));
    p.on('exit', (code, sig) => {
      this.exited = true;
      this.how = sig ? `signal ${sig}` : `status ${code}`;
    });
    this.p = p;
    await waitFor(() => fs.existsSync(`${this.sock}.pid`) || this.exited, 30_000, 'nbdkit to listen');
    if (this.exited) throw new Error(`nbdkit ${args.join(' ')} exited at start: ${this.said}`);
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    this.p!.kill('SIGKILL');
    await waitFor(() => this.exited, 30_000, 'nbdkit to exit');
  }
}
