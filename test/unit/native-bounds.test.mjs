// The native addon refuses lengths, counts, offsets and integers it cannot honour instead of
// touching memory out of bounds; each case runs in a child process, so a crash shows as a signal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const addonPath = fileURLToPath(new URL('../../build/Release/ublkit.node', import.meta.url));

/** Runs `code` (with `native`, `fs` and `C` in scope) in a fresh node; its stdout is the verdict. */
function child(code) {
  const pre = `const native = require(${JSON.stringify(addonPath)}); const fs = require('node:fs'); ` +
    'const C = native.constants; const say = (s) => fs.writeSync(2, s + "\\n");\n';
  const r = spawnSync(process.execPath, ['-e', pre + code], { encoding: 'utf8', timeout: 20000 });
  return { signal: r.signal, status: r.status, out: r.stderr.trim() };
}

/** The child must survive and print `expect` (a refusal, not a crash or a silent success). */
function refuses(code, expect) {
  const r = child(code);
  assert.equal(r.signal, null, `crashed with ${r.signal}`);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, expect);
}

const threw = (call) => `try { ${call}; say('no error'); } catch (e) { say(e.name + ' ' + (e.code ?? '') + ' ' + e.message); }`;

test('pcopy: a count beyond the ops array is refused (it overflowed the check and wrote past the array)', () => {
  refuses(`const fd = fs.openSync('/dev/null', 'r'); ${threw('native.pcopy(fd, new Uint32Array(8), 2 ** 59)')}`, /EINVAL|RangeError/);
  refuses(`const fd = fs.openSync('/dev/null', 'r'); ${threw('native.pcopy(fd, new Uint32Array(8), 2 ** 53 - 1)')}`, /EINVAL/);
  refuses(`const fd = fs.openSync('/dev/null', 'r'); ${threw('native.pcopy(fd, new Uint32Array(15), 2)')}`, /EINVAL/);
  refuses(`const fd = fs.openSync('/dev/null', 'r'); ${threw('native.pcopy(fd, new Uint8Array(36).subarray(1, 33), 1)')}`, /EINVAL.*aligned/);
  refuses(`const fd = fs.openSync('/dev/null', 'r'); ${threw('native.pcopy(fd, new Uint32Array(8), -1)')}`, /EINVAL/);
});

test('integers: NaN, fractions and values a C int cannot hold are RangeErrors, not another fd', () => {
  // close(2**32 + 1) used to close fd 1, close(NaN) fd 0.
  refuses(`${threw('native.close(2 ** 32 + 1)')}; fs.fstatSync(1); say('fd 1 open')`, /RangeError[^]*fd 1 open/);
  refuses(`${threw('native.close(NaN)')}; fs.fstatSync(0); say('fd 0 open')`, /RangeError[^]*fd 0 open/);
  refuses(threw('native.closeRing(1.5)'), /RangeError/);
  refuses(threw('native.setupRing(2 ** 32 + 8, 0, 0)'), /RangeError/);
  refuses(threw('native.enter(-5, 0, 0, 0)'), /RangeError/);
  refuses(threw('native.eventfd(0, 2 ** 40)'), /RangeError/);
  refuses(threw('native.mmap(-1, 4096, C.PROT_READ, C.MAP_PRIVATE | C.MAP_ANONYMOUS, 2n ** 64n - 1n)'), /RangeError/);
});

test('register: nr_args must fit the argument view (PROBE wrote past it)', () => {
  // PROBE (input all zero) writes 16 + 8 * nr bytes; the view is 16 bytes of a larger buffer whose tail must stay 0.
  refuses(`
    const r = native.setupRing(4, 0, 0);
    const u8 = new Uint8Array(256);
    const res = native.register(r.fd, 8, u8.subarray(0, 16), 16);
    say('res ' + res + ' tail ' + (u8.subarray(16).every((b) => b === 0) ? 'intact' : 'overwritten'));
    u8.fill(0); say('ok ' + native.register(r.fd, 8, u8.subarray(0, 16 + 16 * 8), 16));`, /res -22 tail intact\s+ok 0/);
  refuses(`const r = native.setupRing(4, 0, 0); say('files ' + native.register(r.fd, 2, Int32Array.of(0), 4))`, /files -22/);
  refuses(`const r = native.setupRing(4, 0, 0); say('eventfd ' + native.register(r.fd, 4, new Uint8Array(2), 1))`, /eventfd -22/);
  // An opcode whose argument size the addon does not know, and RESIZE_RINGS (the mappings could not follow).
  refuses(`const r = native.setupRing(4, 0, 0); say('unknown ' + native.register(r.fd, 200, new Uint8Array(4096), 1) + ' ' + native.register(r.fd, 33, new Uint8Array(4096), 1))`, /unknown -22 -22/);
});

test('ioctl helpers: a request whose encoded argument is wider than the result is refused (it overwrote the stack)', () => {
  // FS_IOC_FSGETXATTR: _IOR('X', 31, 28-byte struct fsxattr), into a 4- or 8-byte result.
  refuses(`const fd = fs.openSync(${JSON.stringify(addonPath)}, 'r'); ${threw('native.ioctlInt(fd, 0x801c581f)')}`, /EINVAL/);
  refuses(`const fd = fs.openSync(${JSON.stringify(addonPath)}, 'r'); ${threw('native.ioctl64(fd, 0x801c581f)')}`, /EINVAL/);
});

test('mmap: past the end of a regular file, MAP_FIXED, a zero length', () => {
  // Touching a page past EOF is SIGBUS: refuse the mapping instead.
  refuses(`
    const p = require('node:os').tmpdir() + '/ublkit-bounds-' + process.pid;
    fs.writeFileSync(p, Buffer.alloc(100));
    const fd = fs.openSync(p, 'r+'); fs.unlinkSync(p);
    const ok = native.mmap(fd, 4096, C.PROT_READ, C.MAP_SHARED, 0); say('one page ' + ok.byteLength);
    ${threw('new Uint8Array(native.mmap(fd, 3 * 4096, C.PROT_READ, C.MAP_SHARED, 0))[2 * 4096]')}`, /one page 4096\s+Error EINVAL/);
  refuses(threw('native.mmap(-1, 4096, C.PROT_READ, C.MAP_PRIVATE | C.MAP_ANONYMOUS | 0x10, 0)'), /EINVAL/);
  refuses(threw('native.mmap(-1, 0, C.PROT_READ, C.MAP_PRIVATE | C.MAP_ANONYMOUS, 0)'), /RangeError|EINVAL/);
});

test('setupRing refuses flags whose memory the addon would not map (NO_MMAP, REGISTERED_FD_ONLY)', () => {
  refuses(threw('native.setupRing(4, 1 << 14, 0)'), /EINVAL/);
  refuses(threw('native.setupRing(4, 1 << 15, 0)'), /EINVAL/);
});

test('statxDio: a path with a NUL byte is refused, not cut short', () => {
  refuses(threw(`native.statxDio('/tmp\\0/nonexistent')`), /EINVAL|TypeError/);
});
