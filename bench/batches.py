"""Issue 11's table: batches, gzip and bare messages against the C tool and syslog-ng,
measured in one run, each row with its own CPU and the broker's CPU per line.

Persistent, one durable classic queue, the same nginx-like lines for every row. Own CPU: the
publisher's user+sys (children's rusage for processes that exit, /proc for syslog-ng,
which does not; none for the ceiling row, written by the bench itself: tailrabbit's frames
for stdin lines pre-encoded, then written raw with confirms, what the broker can take).
Broker CPU: the oldest beam.smp's user+sys from /proc over the row (other nodes on the
machine are younger: tests start private ones). "bytes/line" is what the
queue holds per line (RabbitMQ's message_bytes: bodies), which is what gzip changes.
Every rate is timed until every line is in the queue: tailrabbit with confirms exits
only when every line is confirmed; rows without confirms wait for the queue's depth.
"""

import os
import resource
import statistics
import subprocess
import sys
import time

import amqp

from peers import ensure_syslog_ng, start_syslog_ng

ROWS = [
    ("amqp-publish (C, no confirms, no headers)", "c", {}),
    ("syslog-ng file -> amqp() (no confirms)", "syslog-ng", {}),
    ("ceiling: tailrabbit's per-line frames written raw", "ceiling", {}),
    ("tailrabbit stdin, per line (default)", "tr", {}),
    ("tailrabbit stdin, confirm = False, headers =", "tr",
     {"confirm": "False", "headers": ""}),
    ("tailrabbit stdin, batch_lines = 100", "tr", {"batch_lines": 100}),
    ("tailrabbit stdin, batch_lines = 100, gzip", "tr",
     {"batch_lines": 100, "compress": "gzip"}),
]
BROKER_KEYS = {"confirm", "headers"}     # these go into [rabbitmq]; the rest per input


def broker_pid():
    """The oldest beam.smp: the shared broker (private test nodes start later)."""
    oldest = None
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        if name != "beam.smp":
            continue
        started = int(stat.rsplit(")", 1)[1].split()[19])
        if oldest is None or started < oldest[0]:
            oldest = (started, int(entry))
    return oldest[1] if oldest else None


def cpu_of(pid):
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def queue_bytes(queue):
    """message_bytes of `queue` (the bodies it holds), from rabbitmqctl; None if unknown."""
    try:
        out = subprocess.run(["rabbitmqctl", "-q", "list_queues", "name", "message_bytes"],
                             capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == queue and parts[1].isdigit():
            return int(parts[1])
    return None


def write_tr_config(path, tmp, queue, broker, keys):
    rabbit = {k: v for k, v in keys.items() if k in BROKER_KEYS}
    own = {k: v for k, v in keys.items() if k not in BROKER_KEYS}
    text = (f"[tailrabbit]\nstate_dir = {os.path.join(tmp, 'state-batches')}\n"
            f"stats_interval = 0\n\n[rabbitmq]\nhost = {broker[0]}\nport = {broker[1]}\n"
            f"refresh = None\n" + "".join(f"{k} = {v}\n" for k, v in rabbit.items())
            + f"\n[input:bulk]\ntype = stdin\nqueue = {queue}\n"
            + "".join(f"{k} = {v}\n" for k, v in own.items()))
    with open(path, "w") as handle:
        handle.write(text)


def one(args, tmp, data_path, queues, broker, name, kind, keys, syslog_ng):
    queue = "bench-batches"
    queues.fresh(queue, durable=True)
    beam = broker_pid()
    beam0, own0 = cpu_of(beam), children_cpu()
    proc = None
    started = time.monotonic()
    if kind == "c":
        with open(data_path, "rb") as handle:
            subprocess.run(["amqp-publish", "-l", "-p", "-r", queue, "-s", broker[0]],
                           stdin=handle, check=True)
    elif kind == "ceiling":    # in this process: its own CPU is not the row's
        from run import run_ceiling
        started = run_ceiling(queues, data_path, queue, True, "stdin")
        own0 = None
    elif kind == "syslog-ng":
        proc = start_syslog_ng(syslog_ng, tmp, data_path, queue, broker)
    else:
        config = os.path.join(tmp, "batches.ini")
        write_tr_config(config, tmp, queue, broker, keys)
        with open(data_path, "rb") as handle:
            subprocess.run([sys.executable, "-m", "tailrabbit", "-c", config, "-l",
                            "WARNING"], stdin=handle, check=True, cwd=args.root)
    confirmed = kind == "ceiling" or kind == "tr" and keys.get("confirm") != "False"
    if proc is not None:       # a peer that fails to start must not wait 5 minutes
        while queues.depth(queue) < args.lines:
            if proc.poll() is not None:
                raise SystemExit(f"syslog-ng exited {proc.returncode}: see its stderr")
            time.sleep(0.01)
    elif not confirmed:        # messages == lines for these rows
        queues.wait_depth(queue, args.lines)
    elapsed = time.monotonic() - started
    own = children_cpu() - own0 if own0 is not None else None
    if proc is not None:
        own = cpu_of(proc.pid)
        proc.terminate()
        proc.wait(30)
    beam_cpu = cpu_of(beam) - beam0
    nbytes = queue_bytes(queue)
    messages = queues.depth(queue)
    queues.delete(queue)
    return {"name": name, "rate": args.lines / elapsed,
            "own": own * 1e6 / args.lines if own is not None else None,
            "broker": beam_cpu * 1e6 / args.lines, "messages": messages,
            "bytes": nbytes / args.lines if nbytes is not None else None}


def nginx_lines(path, count, size):
    """nginx combined-format lines of about `size` bytes (seeded: the same every run), so
    gzip's ratio is that of real access logs, not of a repeated filler byte."""
    import random
    rng = random.Random(11)
    paths = ["/", "/index.html", "/api/v1/orders", "/api/v1/users/%d", "/static/app.%x.js",
             "/img/logo.png", "/search?q=%x", "/health", "/cart/%d/items"]
    agents = ["Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
              "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15",
              "curl/8.4.0", "Go-http-client/1.1", "kube-probe/1.28"]
    with open(path, "wb") as handle:
        for i in range(count):
            request = rng.choice(paths)
            if "%" in request:
                request %= rng.randrange(1 << 24)
            line = ("%d.%d.%d.%d - - [27/Nov/2026:06:%02d:%02d +0000] \"%s %s HTTP/1.1\" "
                    "%d %d \"-\" \"%s\" %.3f" % (
                        rng.randrange(1, 255), rng.randrange(256), rng.randrange(256),
                        rng.randrange(256), i // 60000 % 60, i // 1000 % 60,
                        rng.choice(("GET", "GET", "GET", "POST")), request,
                        rng.choice((200, 200, 200, 304, 404, 500)), rng.randrange(50, 90000),
                        rng.choice(agents), rng.random())).encode()
            # the request id nginx logs as $request_id: 32 random hex digits, then
            # referers of the site until the line has its size
            line += b" rid=%032x" % rng.getrandbits(128)
            while len(line) < size - 1:
                line += b" https://shop.example.com" + rng.choice(paths).split("%")[0].encode()
            line = line[:size - 1]
            handle.write(line + b"\n")


def batches(args, tmp, data_path, queues_factory, broker):
    data_path = os.path.join(tmp, "nginx.txt")
    nginx_lines(data_path, args.lines, args.size)
    syslog_ng = ensure_syslog_ng()
    rows = [row for row in ROWS if row[1] != "syslog-ng" or syslog_ng]
    if not syslog_ng:
        print("syslog-ng (syslog-ng-core, syslog-ng-mod-amqp) not available: row skipped",
              file=sys.stderr)
    results = {}
    for _ in range(args.rounds):
        for name, kind, keys in rows:
            for _attempt in range(3):
                try:
                    result = one(args, tmp, data_path, queues_factory(), broker, name, kind,
                                 keys, syslog_ng)
                    break
                except (OSError, amqp.exceptions.AMQPError, subprocess.CalledProcessError,
                        SystemExit) as error:
                    # the broker is shared: a test may close every connection
                    print(f"{name}: disturbed ({error}); measuring it again",
                          file=sys.stderr)
            else:
                raise SystemExit(f"{name}: failed three times")
            results.setdefault(name, []).append(result)
    print(f"\n## Issue 11: {args.lines} lines x {args.size} bytes, persistent, one durable "
          f"queue, median of {args.rounds} round(s), same run")
    print(f"{'subject':<50} {'lines/s':>9} {'vs C':>6} {'vs sng':>7} {'own us/l':>9} "
          f"{'broker us/l':>12} {'msgs':>7} {'bytes/l':>8}")

    def median(name, key):
        values = [r[key] for r in results.get(name, []) if r[key] is not None]
        return statistics.median(values) if values else None
    base = median(ROWS[0][0], "rate")
    peer = median(ROWS[1][0], "rate")
    for name, _, _ in rows:
        rate = median(name, "rate")
        nbytes = median(name, "bytes")
        print(f"{name:<50} {rate:>9,.0f} {rate / base:>5.2f}x "
              f"{(f'{rate / peer:.2f}x' if peer else '-'):>7} "
              f"{(f'{own:.2f}' if (own := median(name, 'own')) is not None else '-'):>9} "
              f"{median(name, 'broker'):>12.2f} {median(name, 'messages'):>7.0f} "
              f"{(f'{nbytes:.1f}' if nbytes is not None else '-'):>8}")
