// Usage text: the overview (`ublkit help`) and one text per command (`ublkit help CMD`, `ublkit CMD --help`).

const ADD_OPTIONS = `options:
  -t, --type TYPE         null, memory, loop, stripe or fault_inject
  -n, --number ID         device id (default: the kernel picks one)
  -q, --queues N          hardware queues, 1..32 (default 2)
  -d, --depth N           queue depth, 1..1024 (default 128)
  --nthreads N            serving threads, 1..32 (default: one per queue); differing from -q needs
                          --per_io_tasks or -b
  --per_io_tasks          spread the (queue, tag) slots over the threads
  -b, --batch             batch IO commands (UBLK_F_BATCH_IO)
  -g, -u, -z, --auto_zc   data mode: get-data, user copy, zero copy, auto buffer registration
  --mode M                auto, copy (default), get-data, user-copy, zero-copy or auto-buf-reg
  --auto_zc_fallback      null target: auto buffer registration falling back to -z (needs -z --auto_zc)
  -r 1, -e 1, -i 1        recoverable (-e: fail IO while no server; -i: reissue it to the next)
  -s, --size SIZE         memory / null size: bytes or with K, M, G, T
  --max_io_buf_bytes N    largest request in bytes: a page multiple, up to 33554432 (default 1048576)
  --no_ublk_fixed_fd      use the raw /dev/ublkcN fd in SQEs
  --no_auto_part_scan     no partition scan at start
  --no_pin                leave serving threads unbound (default: on their queue's first CPU)
  --foreground            serve in this process instead of a detached daemon
  --quiet                 print only the queue lines
  --metadata_size N       integrity metadata bytes per block, 1..255 (needs -u and loop's second file)
  --pi_offset N, --tag_size N, --csum_type ip|t10dif|nvme, --integrity_capable, --integrity_reftag
  --shmem_zc [--htlb FILE [--rdonly_shmem_buf]]   shared-memory zero copy
  -f, --file FILE         a backing file (same as giving it as an argument)
target options:
  stripe: --chunk_size N (default 65536), 1-4 files; loop: one file (two with --metadata_size),
  --buffered 1; fault_inject: --delay_us N, --die_during_fetch 1
Every option also takes --name=value.`;

const COMMANDS: Record<string, string> = {
  add: `usage: ublkit add -t TYPE [options] [FILE...]
Create a device and serve it from a detached daemon; prints the device once it is LIVE.
${ADD_OPTIONS}`,
  recover: `usage: ublkit recover -n ID -t TYPE [the options and files of the original add]
Attach a new server to a recoverable device (added with -r 1, -e 1 or -i 1) whose server died or
was quiesced. The options must match the original add.
${ADD_OPTIONS}`,
  del: `usage: ublkit del -n ID | -a | --orphans [-n ID]
Stop and delete device ID (-a: every ublk device; --orphans: those whose server is gone); returns
once it is gone. -a goes on past a failure, prints a line for each, and exits 1.`,
  list: `usage: ublkit list [-n ID] [--json]
Print device ID (default: every device) as kublk does, or as JSON.`,
  features: `usage: ublkit features
Print the kernel's ublk feature bits that ublkit implements.`,
  stop: `usage: ublkit stop -n ID [--safe]
Stop device ID (--safe: only if its block device is not open).`,
  quiesce: `usage: ublkit quiesce -n ID
Quiesce recoverable device ID: its server exits and IO waits for 'ublkit recover'.`,
  update_size: `usage: ublkit update_size -n ID -s BYTES
Change the capacity of device ID (a multiple of its block size).`,
  help: `usage: ublkit help [COMMAND]
Print the overview, or the usage of COMMAND (also: ublkit COMMAND --help).`,
};

export const OVERVIEW = `usage: ublkit <command> [options] [backing files]
commands:
  add -t {null|memory|loop|stripe|fault_inject} [-n ID] [-q QUEUES] [-d DEPTH] [-z|--auto_zc|-u|-g|--mode M]
      [--nthreads N [--per_io_tasks]] [-r 1|-e 1|-i 1] [--foreground] [--quiet] [--size SIZE] [FILE...]
      stripe: --chunk_size N, 1-4 files; fault_inject: --delay_us N, --die_during_fetch 1
  recover -n ID [the add options]
  del -n ID | -a | --orphans
  list [-n ID] [--json]
  features
  stop -n ID [--safe]
  quiesce -n ID
  update_size -n ID -s BYTES
  help [COMMAND]
modes: copy (default), -g get-data, -u user-copy, -z zero-copy, --auto_zc auto-buf-reg, --mode auto
'ublkit help COMMAND' or 'ublkit COMMAND --help' for a command's options; 'ublkit --version'.
`;

/** The usage text of `cmd`, or undefined for an unknown command. */
export function commandUsage(cmd: string): string | undefined {
  return Object.prototype.hasOwnProperty.call(COMMANDS, cmd) ? COMMANDS[cmd] + '\n' : undefined;
}
