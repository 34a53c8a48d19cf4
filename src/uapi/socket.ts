// Socket constants, io_uring socket opcodes and sockaddr layouts (Linux, x86-64/arm64 little endian).

export const IORING_OP_CONNECT = 16;
export const IORING_OP_SENDMSG = 9;
export const IORING_OP_SEND = 26;
export const IORING_OP_RECV = 27;
export const IORING_OP_SHUTDOWN = 34;
export const IORING_OP_SOCKET = 45;
export const IORING_OP_ASYNC_CANCEL = 14;
/** cancel_flags: every request on the fd in sqe->fd (Linux 5.19). */
export const IORING_ASYNC_CANCEL_ALL = 1 << 0;
export const IORING_ASYNC_CANCEL_FD = 1 << 1;

export const AF_UNIX = 1;
export const AF_INET = 2;
export const SOCK_STREAM = 1;
export const SOCK_CLOEXEC = 0o2000000;
export const MSG_WAITALL = 0x100;
export const MSG_NOSIGNAL = 0x4000;
export const SHUT_RDWR = 2;

/** struct msghdr on 64-bit Linux: name, namelen, iov, iovlen, control, controllen, flags. */
export const MSGHDR = { size: 56, msg_iov: 16, msg_iovlen: 24 } as const;
/** struct iovec: base, len. */
export const IOVEC = { size: 16, iov_base: 0, iov_len: 8 } as const;

/** sun_path's size in struct sockaddr_un. */
export const UNIX_PATH_MAX = 108;

/** struct sockaddr_un: u16 family, then the NUL-terminated path. Returns its length for connect. */
export function encodeSockaddrUn(path: string): Uint8Array {
  const p = new TextEncoder().encode(path);
  if (p.byteLength === 0 || p.byteLength >= UNIX_PATH_MAX) throw new RangeError(`unix socket path must be 1..${UNIX_PATH_MAX - 1} bytes`);
  const b = new Uint8Array(2 + p.byteLength + 1);
  new DataView(b.buffer).setUint16(0, AF_UNIX, true);
  b.set(p, 2);
  return b;
}

/** struct sockaddr_in (16 bytes): family in host order, port and address in network order. */
export function encodeSockaddrIn(ipv4: string, port: number): Uint8Array {
  const parts = ipv4.split('.').map(Number);
  if (parts.length !== 4 || parts.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) throw new RangeError(`not an IPv4 address: ${ipv4}`);
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint16(0, AF_INET, true);
  v.setUint16(2, port);
  b.set(parts, 4);
  return b;
}
