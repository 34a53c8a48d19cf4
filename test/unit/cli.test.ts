// CLI parsing, validation messages, and kublk's exact output formats, without a kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs, OPTIONS } from '../../src/cli/args.js';
import { TARGET_CLI } from '../../src/targets/cli.js';
import { deviceOptions } from '../../src/cli/add-options.js';
import { formatListing, formatFeatures } from '../../src/cli/listing.js';
import { buildParams } from '../../src/ublk/params.js';
import { chooseMode } from '../../src/ublk/modes.js';
import { parseSize } from '../../src/targets/size.js';
import * as U from '../../src/uapi/ublk.js';

test('getopt-style parsing: interleaved files, clustered flags, target options', () => {
  const a = parseArgs(['add', '-t', 'loop', 'disk.img', '-q2', '-zu', '--depth', '64', '--chunk_size', '4096', '--foreground']);
  assert.equal(a.type, 'loop');
  assert.deepEqual(a.files, ['disk.img']);
  assert.equal(a.queues, 2);
  assert.equal(a.depth, 64);
  assert.ok(a.zeroCopy && a.userCopy && a.foreground);
  assert.deepEqual(a.targetOpts, { chunk_size: '4096' });
  assert.throws(() => parseArgs(['add', '--chunk_size']), /'--chunk_size' requires an argument/);
  assert.throws(() => parseArgs(['add', '-q', 'x']), /integer/);
});

test('kublk forms keep working: -q2, -n3, -zu, -r 1, -n -1, -f FILE, --, files anywhere', () => {
  const a = parseArgs(['add', '-n3', 'a.img', '-r', '1', '-e1', '-i', '1', '-f', 'b.img', '-gb', '--', '-c.img']);
  assert.equal(a.number, 3);
  assert.equal(a.recovery + a.recoveryFailIo + a.recoveryReissue, 3);
  assert.ok(a.getData && a.batch);
  assert.deepEqual(a.files, ['a.img', 'b.img', '-c.img']);
  assert.equal(parseArgs(['add', '-n', '-1']).number, -1);
  assert.equal(parseArgs(['add', '--debug_mask', '20']).debugMask, 0x20, 'hex, as kublk');
  assert.equal(parseArgs(['add', '-d', '0x40']).depth, 64);
});

test('--opt=value wherever --opt value is accepted', () => {
  const a = parseArgs(['add', '--type=stripe', '--queues=4', '--depth=16', '--chunk_size=8192', '--size=1G', '--number=7',
    '--mode=auto', '--max_io_buf_bytes=65536', '--htlb=/h', '--file=x.img']);
  assert.equal(a.type, 'stripe');
  assert.equal(a.queues, 4);
  assert.equal(a.depth, 16);
  assert.equal(a.number, 7);
  assert.equal(a.size, '1G');
  assert.equal(a.mode, 'auto');
  assert.equal(a.maxIoBufBytes, 65536);
  assert.equal(a.htlb, '/h');
  assert.deepEqual(a.files, ['x.img']);
  assert.deepEqual(a.targetOpts, { chunk_size: '8192' });
  assert.throws(() => parseArgs(['add', '--foreground=1']), /'--foreground' takes no value/);
});

test('unknown options and bad numbers: one line naming the option', () => {
  const msg = (args: string[]): string => {
    try {
      parseArgs(['add', ...args]);
    } catch (e) {
      return (e as Error).message;
    }
    return 'accepted';
  };
  const cases: Array<[string[], RegExp]> = [
    [['--bogus', '1'], /^unknown option '--bogus'$/],
    [['--bogus=1'], /^unknown option '--bogus'$/],
    [['-x'], /^unknown option '-x'$/],
    [['-zx'], /^unknown option '-x'$/],
    [['-q', '-2'], /^-q -2: number of queues must be 1\.\.32$/],
    [['--queues=1e3'], /^--queues 1e3: number of queues must be an integer$/],
    [['-d', '99999999999999999999'], /^-d 99999999999999999999: queue depth must be 1\.\.1024$/],
    [['-n', '-2'], /^-n -2: device id must be -1\.\.1048575$/],
    [['-n', String(2 ** 20)], /device id must be/],
    [['--nthreads', '0'], /^--nthreads 0: number of threads must be 1\.\.32$/],
    [['--metadata_size', '256'], /^--metadata_size 256: integrity metadata size must be 1\.\.255$/],
    [['--pi_offset=-1'], /^--pi_offset -1: PI offset must be 0\.\.255$/],
    [['-s', 'lots'], /^-s lots: not a size/],
    [['--size', '-5'], /^--size -5: not a size/],
    [['--size', '0'], /^--size 0: the size must be positive$/],
    [['--size', '99999999T'], /^--size 99999999T: the size is too large$/],
    [['--chunk_size', '4k'], /^--chunk_size 4k: stripe chunk size must be an integer$/],
    [['--delay_us', '-1'], /^--delay_us -1: delay in microseconds must be 0\.\./],
    [['-t'], /^option '-t' requires an argument$/],
    [['--type='], /^option '--type' requires an argument$/],
  ];
  for (const [args, re] of cases) assert.match(msg(args), re, args.join(' '));
});

test('--max_io_buf_bytes: a page multiple from one page to 32 MiB, refused at parse time', () => {
  assert.equal(parseArgs(['add', '--max_io_buf_bytes', String(32 << 20)]).maxIoBufBytes, 32 << 20);
  assert.equal(parseArgs(['add', '--max_io_buf_bytes', '4096']).maxIoBufBytes, 4096);
  for (const bad of ['5000', '2048', '0', '-4096', String((32 << 20) + 4096), '99999999999999999999']) {
    assert.throws(() => parseArgs(['add', '--max_io_buf_bytes', bad]), /--max_io_buf_bytes .*(page size in 4096\.\.33554432|too large)/, bad);
  }
});

// The built CLI: its stdout, stderr and exit status (no kernel needed for these).
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const BUNDLE = fileURLToPath(new URL('../../src/cli/ublkit.cjs', import.meta.url));
const run = (args: string[], bin = CLI) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });

test('ublkit --version, help CMD, CMD --help; unknown option exits non-zero with one line', () => {
  const pkg = JSON.parse(fs.readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8'));
  for (const bin of [CLI, ...(fs.existsSync(BUNDLE) ? [BUNDLE] : [])]) {
    const v = run(['--version'], bin);
    assert.equal(v.status, 0);
    assert.equal(v.stdout, `ublkit ${pkg.version}\n`);
  }
  for (const cmd of ['add', 'recover', 'del', 'list', 'features', 'stop', 'quiesce', 'update_size']) {
    const h = run(['help', cmd]);
    assert.equal(h.status, 0, cmd);
    assert.match(h.stdout, new RegExp(`^usage: ublkit ${cmd}`));
    for (const flag of ['--help', '-h']) {
      const r = run([cmd, flag]);
      assert.equal(r.status, 0, `${cmd} ${flag}`);
      assert.equal(r.stdout, h.stdout);
      assert.equal(r.stderr, '');
    }
  }
  for (const args of [['help'], ['--help'], ['-h']]) {
    const r = run(args);
    assert.equal(r.status, 0, args.join(' '));
    assert.match(r.stdout, /^usage: ublkit <command>/);
  }
  const hh = run(['help', 'help']);
  assert.equal(hh.status, 0);
  assert.match(hh.stdout, /^usage: ublkit help \[COMMAND\]/);
  assert.equal(run(['help', '--help']).stdout, hh.stdout);
  const nope = run(['help', 'nope']);
  assert.notEqual(nope.status, 0);
  assert.equal(nope.stderr, "ublkit: no such command 'nope'\n");
  for (const [args, line] of [
    [['list', '--bogus'], "ublkit: unknown option '--bogus'\n"],
    [['add', '-t', 'null', '--max_io_buf_bytes=5000'], 'ublkit: --max_io_buf_bytes 5000: must be a multiple of the 4096-byte page size in 4096..33554432\n'],
    [['add', '-t', 'null', '-q=2'], 'ublkit: -q =2: number of queues must be an integer\n'],
  ] as Array<[string[], string]>) {
    const r = run(args);
    assert.equal(r.status, 234, `${args.join(' ')}: -EINVAL as kublk`);
    assert.equal(r.stderr, line);
    assert.equal(r.stdout, '');
  }
});

test('each command is its own file with its usage text; help prints exactly that text', async () => {
  const files: Record<string, string> = {
    add: 'add', recover: 'recover', del: 'del', list: 'list', features: 'features', stop: 'stop', quiesce: 'quiesce', update_size: 'update-size',
  };
  for (const [cmd, file] of Object.entries(files)) {
    const mod = (await import(`../../src/cli/commands/${file}.js`)) as { usage: string; run: unknown };
    assert.equal(typeof mod.run, 'function', cmd);
    assert.equal(run(['help', cmd]).stdout, mod.usage, cmd);
  }
});

test('target options come from each target\'s folder: in the option table and in add\'s usage', () => {
  const usage = run(['help', 'add']).stdout;
  for (const t of TARGET_CLI) {
    assert.ok(usage.includes(`  ${t.usage}\n`), t.name);
    for (const [name, o] of Object.entries(t.options)) {
      assert.equal(OPTIONS[name]?.kind, o.text ? 'str' : 'int', `--${name}`);
      assert.equal(OPTIONS[name].key, undefined, `--${name} lands in targetOpts`);
      assert.equal(OPTIONS[name].what, o.what);
    }
  }
  assert.deepEqual(parseArgs(['add', '-t', 'fault_inject', '--delay_us=5', '--die_during_fetch', '1']).targetOpts, { delay_us: '5', die_during_fetch: '1' });
  const spec = deviceOptions(parseArgs(['add', '-t', 'fault_inject', '--delay_us', '7'])).target as { module: string; config: unknown };
  assert.deepEqual(spec, { module: 'ublkit:fault_inject', config: { delayUs: 7, dieDuringFetch: false } });
});

test('add validation gives one clear message per problem', () => {
  const opts = (s: string) => deviceOptions(parseArgs(['add', ...s.split(' ')]));
  assert.throws(() => opts('-t null -q 0'), /number of queues must be 1\.\.32/);
  assert.throws(() => opts('-t null -q 33'), /number of queues/);
  assert.throws(() => opts('-t null -d 5000'), /queue depth must be 1\.\.1024/);
  assert.throws(() => opts('-t nosuch'), /no such tgt type nosuch/);
  assert.throws(() => opts('-t null -z -u'), /too many data copy modes/);
  assert.throws(() => opts('-t loop'), /exactly one backing file/);
  assert.throws(() => opts('-t memory'), /--size/);
  const o = opts('-t null -q 1 -z');
  assert.equal(o.mode, 'zero-copy');
  assert.equal(o.queues, 1);
  assert.equal(opts('-t null').queues, 2, 'kublk default: 2 queues');
});

test('listing text matches kublk column for column', () => {
  const text = formatListing({
    id: 3, nrHwQueues: 2, queueDepth: 128, blockSize: 512, capacitySectors: 524288000, sizeBytes: 0,
    maxIoBufBytes: 1048576, pid: 1234, flags: 0x26042, state: 'LIVE', mode: 'copy',
    queues: [{ id: 0, affinity: [0, 1] }, { id: 1, affinity: [1] }], blockPath: '', charPath: '',
  });
  assert.equal(text,
    'dev id 3: nr_hw_queues 2 queue_depth 128 block size 512 dev_capacity 524288000\n' +
    '\tmax rq size 1048576 daemon pid 1234 flags 0x26042 state LIVE\n' +
    '\tqueue 0: affinity(0 )\n\tqueue 1: affinity(1 )\n');
  const line2 = text.split('\n')[1].trim().split(/\s+/);
  assert.equal(line2[6], '1234');
  assert.equal(line2[10], 'LIVE');
});

test('features text: padded hex and names', () => {
  assert.equal(formatFeatures(0x41),
    'ublk_drv features: 0x41\n0x1               : UBLK_F_SUPPORT_ZERO_COPY\n0x40              : UBLK_F_CMD_IOCTL_ENCODE\n');
});

test('params from a target: geometry, caps, and refusals', () => {
  const p = buildParams({ size: 1 << 30, caps: { flush: true, discard: true }, read: () => 0, write: () => 0 }, 1 << 20);
  assert.equal(p.basic.devSectors, (1 << 30) / 512);
  assert.equal(p.basic.maxSectors, 2048);
  assert.equal(p.basic.attrs & U.UBLK_ATTR_VOLATILE_CACHE, U.UBLK_ATTR_VOLATILE_CACHE);
  assert.equal(p.discard?.maxDiscardSegments, 1);
  assert.equal(p.discard?.maxWriteZeroesSectors, 0);
  assert.throws(() => buildParams({ size: 1000, read: () => 0, write: () => 0 }, 1 << 20), /multiple of the 512-byte/);
  assert.throws(() => buildParams({ size: 0, read: () => 0, write: () => 0 }, 1 << 20), /positive/);
  assert.throws(() => buildParams({ size: 4096, limits: { dmaAlignment: 500 }, read: () => 0, write: () => 0 }, 1 << 20), /dma alignment/);
});

test('mode auto: zero copy for pass-through targets, copy for targets that see bytes', () => {
  const all = U.UBLK_F_SUPPORT_ZERO_COPY | U.UBLK_F_AUTO_BUF_REG | U.UBLK_F_USER_COPY;
  assert.equal(chooseMode('auto', all, true), 'zero-copy');
  assert.equal(chooseMode('auto', U.UBLK_F_AUTO_BUF_REG, true), 'auto-buf-reg');
  assert.equal(chooseMode('auto', all, false), 'copy');
  assert.equal(chooseMode('auto', 0, true), 'copy');
  assert.equal(chooseMode('user-copy', 0, true), 'user-copy');
});

test('sizes', () => {
  assert.equal(parseSize('512M'), 512 * 2 ** 20);
  assert.equal(parseSize('2G'), 2 ** 31);
  assert.equal(parseSize(4096), 4096);
  assert.throws(() => parseSize('12X'), /invalid size/);
});
