// The options of add and recover, shared by their usage texts; the targets' lines come from each
// target's own declaration (src/targets/<name>/cli.ts).
import { TARGET_CLI } from '../targets/cli.js';

export const ADD_OPTIONS = `options:
  -t, --type TYPE         null, memory, loop, stripe or fault_inject
  -n, --number ID         device id (default: the kernel picks one)
  -q, --queues N          hardware queues, 1..32 (default 2)
  -d, --depth N           queue depth, 1..1024 (default 128)
  --nthreads N            serving threads, 1..32 (default: one per queue); differing from -q needs
                          --per_io_tasks or -b
  --per_io_tasks          spread the (queue, tag) slots over the threads
  -b, --batch             batch IO commands (UBLK_F_BATCH_IO)
  --rotate_auto_buf       with -b --auto_zc: alternate each tag between two buffer indices
  -g, -u, -z, --auto_zc   data mode: get-data, user copy, zero copy, auto buffer registration
  --mode M                auto, copy (default), get-data, user-copy, zero-copy or auto-buf-reg
  --auto_zc_fallback      null target: auto buffer registration falling back to -z (needs -z --auto_zc)
  -r 1, -e 1, -i 1        recoverable (-e: fail IO while no server; -i: reissue it to the next)
  -s, --size SIZE         memory / null size: bytes or with K, M, G, T
  --max_io_buf_bytes N    largest request in bytes: a page multiple, up to 33554432 (default 1048576)
  --io_desc_size N        io descriptor slot bytes: a multiple of 8, 24..256 (UBLK_F_IO_DESC_SIZE)
  --no_ublk_fixed_fd      use the raw /dev/ublkcN fd in SQEs
  --no_auto_part_scan     no partition scan at start
  --no_pin                leave serving threads unbound (default: on their queue's first CPU)
  --foreground            serve in this process instead of a detached daemon (messages to stderr)
  --log FILE              where the daemon logs, time-stamped (default /var/log/ublkit/ublkb<ID>.log)
  --quiet                 print only the queue lines
  --metadata_size N       integrity metadata bytes per block, 1..255 (needs -u and loop's second file)
  --pi_offset N, --tag_size N, --csum_type ip|t10dif|nvme, --integrity_capable, --integrity_reftag
  --shmem_zc [--htlb FILE [--rdonly_shmem_buf]]   shared-memory zero copy
  -f, --file FILE         a backing file (same as giving it as an argument)
  --filter NAME[:k=v,...] a filter over the target, repeatable, the first nearest to the kernel:
                          readonly, offset, delay, error, cow, rate, log, cache (docs/filters.md)
target options:
${TARGET_CLI.map((t) => `  ${t.usage}`).join('\n')}
Every option also takes --name=value.`;
