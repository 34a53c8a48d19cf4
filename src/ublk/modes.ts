// Data-transfer modes: names, the feature flags each needs, and the choice made by mode 'auto'.
import * as U from '../uapi/ublk.js';

export type DataMode = 'copy' | 'get-data' | 'user-copy' | 'zero-copy' | 'auto-buf-reg';
export type ModeRequest = DataMode | 'auto';

export const MODE_FLAGS: Record<DataMode, number> = {
  'copy': 0,
  'get-data': U.UBLK_F_NEED_GET_DATA,
  'user-copy': U.UBLK_F_USER_COPY,
  'zero-copy': U.UBLK_F_SUPPORT_ZERO_COPY,
  'auto-buf-reg': U.UBLK_F_AUTO_BUF_REG,
};

/** Modes that hand the client's pages to the server: they need a trusted (CAP_SYS_ADMIN) server. */
export function needsTrust(mode: DataMode): boolean {
  return mode === 'user-copy' || mode === 'zero-copy' || mode === 'auto-buf-reg';
}

/** Modes where the target never sees the bytes and must route requests to files. */
export function needsRoute(mode: DataMode): boolean {
  return mode === 'zero-copy' || mode === 'auto-buf-reg';
}

/**
 * 'auto': a pass-through target (has route) gets zero copy when the kernel offers it; a target
 * that must see the bytes gets copy mode (one kernel memcpy into a stable buffer is cheaper here
 * than a user-copy syscall per request from JavaScript).
 */
export function chooseMode(req: ModeRequest, features: number, canRoute: boolean): DataMode {
  if (req !== 'auto') return req;
  if (canRoute && (features & U.UBLK_F_SUPPORT_ZERO_COPY)) return 'zero-copy';
  if (canRoute && (features & U.UBLK_F_AUTO_BUF_REG)) return 'auto-buf-reg';
  return 'copy';
}

/** Which mode a device's negotiated flags say it runs in. */
export function modeOfFlags(flags: number): DataMode {
  if (flags & U.UBLK_F_AUTO_BUF_REG) return 'auto-buf-reg';
  if (flags & U.UBLK_F_SUPPORT_ZERO_COPY) return 'zero-copy';
  if (flags & U.UBLK_F_USER_COPY) return 'user-copy';
  if (flags & U.UBLK_F_NEED_GET_DATA) return 'get-data';
  return 'copy';
}
