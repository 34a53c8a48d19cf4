// The backend of an nbd device as a URI, as nbdinfo and qemu spell it; no imports, so the CLI's
// listing can use it without loading the target.

/** nbd+unix:///name?socket=PATH or nbd://host:port/name. */
export function nbdUri(c: { unix?: string; host?: string; port?: number; export?: string }): string {
  const name = encodeURIComponent(c.export ?? '');
  return c.unix !== undefined ? `nbd+unix:///${name}?socket=${c.unix}` : `nbd://${c.host}:${c.port ?? 10809}/${name}`;
}
