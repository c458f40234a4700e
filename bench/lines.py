"""Issue 12's table: a file input with multiline_start and with exclude, beside the plain
per-line row, in the same run (target: >= 0.9x the plain row's lines/s).

The same nginx-like lines for every row (persistent, one durable queue, confirms on).
Every line matches the start regex (so messages == lines and the row measures what
joining costs per line), and the exclude pattern matches none (it measures what a search
costs per line, not the broker's work saved by filtering). Rates are timed until every
line is in the queue; own CPU is the tailrabbit process's from /proc just before it is
stopped, the broker's from the oldest beam.smp.
"""

import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

from batches import broker_pid, cpu_of, nginx_lines

ROWS = [
    ("file input, per line (plain)", {}),
    # multiline_timeout 0.05: the last event is held until then (1 s would be in the time)
    ("file input, multiline_start = ^\\d+\\.", {"multiline_start": r"^\d+\.",
                                              "multiline_timeout": 0.05}),
    ("file input, exclude = \"GET /healthz ", {"exclude": '"GET /healthz '}),
    ("file input, multiline = python", {"multiline": "python", "multiline_timeout": 0.05}),
]


def one(args, tmp, data_path, queues, broker, keys):
    queue = "bench-lines"
    queues.fresh(queue, durable=True)
    state = os.path.join(tmp, "state-lines")
    shutil.rmtree(state, ignore_errors=True)
    log = os.path.join(tmp, "lines.log")
    shutil.copy(data_path, log)
    config = os.path.join(tmp, "lines.ini")
    with open(config, "w") as handle:
        handle.write(f"[tailrabbit]\nstate_dir = {state}\nstats_interval = 0\n\n"
                     f"[rabbitmq]\nhost = {broker[0]}\nport = {broker[1]}\nrefresh = None\n\n"
                     f"[input:bulk]\ntype = file\npath = {log}\nqueue = {queue}\n"
                     f"start_at = beginning\n"
                     + "".join(f"{k} = {v}\n" for k, v in keys.items()))
    beam = broker_pid()
    beam0 = cpu_of(beam)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "tailrabbit", "-c", config, "-l",
                             "WARNING"], cwd=args.root)
    try:
        queues.wait_depth(queue, args.lines)
        elapsed = time.monotonic() - started
        own = cpu_of(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    broker_cpu = cpu_of(beam) - beam0
    queues.delete(queue)
    return {"rate": args.lines / elapsed, "own": own * 1e6 / args.lines,
            "broker": broker_cpu * 1e6 / args.lines}


def lines_table(args, tmp, queues_factory, broker):
    data_path = os.path.join(tmp, "nginx-lines.txt")
    nginx_lines(data_path, args.lines, args.size)
    results = {}
    for _ in range(args.rounds):
        for name, keys in ROWS:
            results.setdefault(name, []).append(one(args, tmp, data_path, queues_factory(),
                                                    broker, keys))
    print(f"\n## Issue 12: {args.lines} nginx lines x {args.size} bytes from a file, "
          f"persistent, confirms, median of {args.rounds} round(s), same run")
    print(f"{'subject':<42} {'lines/s':>9} {'vs plain':>9} {'own us/l':>9} "
          f"{'broker us/l':>12}")
    base = statistics.median(r["rate"] for r in results[ROWS[0][0]])
    for name, _ in ROWS:
        rows = results[name]
        rate = statistics.median(r["rate"] for r in rows)
        print(f"{name:<42} {rate:>9,.0f} {rate / base:>8.2f}x "
              f"{statistics.median(r['own'] for r in rows):>9.2f} "
              f"{statistics.median(r['broker'] for r in rows):>12.2f}")
