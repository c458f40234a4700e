"""tailrabbit benchmark: throughput against rabbitmq-c's amqp-publish and a plain py-amqp
loop measured in the same run, FIFO-to-queue latency, idle CPU and RSS (bench/memory.py).

    .venv/bin/python bench/run.py [--lines 200000] [--size 200] [--rounds 1]
        [--parts throughput,latency,memory,batches,batch-latency] [--quick] [--before DIR]

--quick measures only the C tool and tailrabbit; --before DIR (a checkout of an older
tailrabbit, e.g. from `git archive`) adds its tailrabbit rows and memory rows, in the same
run, to tell a change from the machine's noise.

Machines here are noisy: read the ratios, not the absolute rates. Every figure is timed
until every line is in the queue (and for tailrabbit, confirmed).
"""

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import amqp

from batches import batches
from lines import lines_table
from memory import memory, open_fifo_writer, rss_kib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BROKER = ("127.0.0.1", 5672)


def connect():
    connection = amqp.Connection(f"{BROKER[0]}:{BROKER[1]}",
                                 socket_settings={socket.TCP_USER_TIMEOUT: 0})
    connection.connect()
    return connection


class Queues:
    def __init__(self):
        self.connection = connect()
        self.channel = self.connection.channel()

    def fresh(self, name, durable):
        self.channel.queue_delete(name)
        self.channel.queue_declare(name, durable=durable, auto_delete=False)

    def depth(self, name):
        return self.channel.queue_declare(name, passive=True).message_count

    def wait_depth(self, name, count, timeout=300):
        deadline = time.monotonic() + timeout
        while self.depth(name) < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"{name}: only {self.depth(name)} of {count} arrived")
            time.sleep(0.01)

    def delete(self, name):
        self.channel.queue_delete(name)


def write_config(path, state_dir, inputs, durable, delivery_mode):
    lines = [f"[tailrabbit]\nstate_dir = {state_dir}\nstats_interval = 0\n",
             f"[rabbitmq]\nhost = {BROKER[0]}\nport = {BROKER[1]}\nrefresh = None\n"
             f"durable = {durable}\ndelivery_mode = {delivery_mode}\n"]
    for name, keys in inputs.items():
        lines.append(f"[input:{name}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()))
    with open(path, "w") as handle:
        handle.write("\n".join(lines))


def tailrabbit_cmd(config):
    return [sys.executable, "-m", "tailrabbit", "-c", config, "-l", "WARNING"]


def root_of(name, args):
    """Which checkout runs a tailrabbit row: --before for the rows named so."""
    return args.before if name.endswith("(before)") else ROOT


def run_c_tool(queues, data_path, queue, persistent, same_properties=False):
    args = ["amqp-publish", "-l", "-r", queue, "-s", BROKER[0]]
    if persistent:
        args.append("-p")
    if same_properties:     # what tailrabbit sends for a stdin line (no confirms, though)
        args += ["-C", "text/plain", "-H", "input: bulk", "-H",
                 f"host: {socket.gethostname()}"]
    started = time.monotonic()
    with open(data_path, "rb") as handle:
        subprocess.run(args, stdin=handle, check=True)
    return started


def run_py_amqp(queues, data_path, queue, persistent):
    with open(data_path, "rb") as handle:
        lines = handle.read().split(b"\n")[:-1]
    connection = connect()
    channel = connection.channel()
    started = time.monotonic()
    mode = 2 if persistent else 1
    for line in lines:
        channel.basic_publish(amqp.Message(line, delivery_mode=mode), "", queue)
    connection.close()
    return started


def run_ceiling(queues, data_path, queue, persistent, kind):
    """The broker's ceiling for tailrabbit's own messages: its frames, encoded before the
    clock starts, written as fast as the socket takes them, every confirm awaited."""
    from tailrabbit.settings import InputSettings
    from tailrabbit.line import Batch
    from tailrabbit.publisher.frames import RouteEncoder
    with open(data_path, "rb") as handle:
        lines = handle.read().split(b"\n")[:-1]
    connection = connect()
    channel = connection.channel()
    channel.confirm_select()
    acked = [0]
    channel.events["basic_ack"].add(lambda tag, multiple: acked.__setitem__(0, tag))
    item = InputSettings(name="bulk", type=kind, path="/var/log/bench.log"
                         if kind == "file" else None, queue=queue, routing_key=queue,
                         delivery_mode=2 if persistent else 1)
    encoder = RouteEncoder(channel.channel_id, connection.frame_max, item)
    chunks = []
    for start in range(0, len(lines), 512):
        part = lines[start:start + 512]
        offsets = [(start + i) * 200 for i in range(len(part))] if kind == "file" else None
        out = []
        encoder.encode(Batch("bulk", part, offsets=offsets), out)
        chunks.append(b"".join(out))
    started = time.monotonic()
    for chunk in chunks:
        connection._transport.write(chunk)
    while acked[0] < len(lines):
        connection.drain_events(timeout=30)
    connection.close()
    return started


def run_tailrabbit_stdin(queues, data_path, queue, persistent, tmp, metrics=False,
                         root=ROOT):
    config = os.path.join(tmp, "stdin.ini")
    write_config(config, os.path.join(tmp, "state-stdin"), {"bulk": {
        "type": "stdin", "queue": queue}}, True, 2 if persistent else 1)
    if metrics:                 # the Prometheus endpoint on, and scraped 10 times a second
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with open(config) as handle:
            text = handle.read()
        with open(config, "w") as handle:
            handle.write(text.replace("stats_interval = 0",
                                      f"stats_interval = 0\nmetrics = 127.0.0.1:{port}"))
        scraper = threading.Thread(target=scrape, args=(port,), daemon=True)
        scraper.start()
    started = time.monotonic()
    with open(data_path, "rb") as handle:
        subprocess.run(tailrabbit_cmd(config), stdin=handle, check=True, cwd=root)
    return started


def scrape(port):
    import urllib.request
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).read()
        except OSError:
            pass
        time.sleep(0.1)


def run_tailrabbit_file(queues, data_path, queue, persistent, tmp, root=ROOT):
    config = os.path.join(tmp, "file.ini")
    state = os.path.join(tmp, "state-file")
    shutil.rmtree(state, ignore_errors=True)
    log = os.path.join(tmp, "bench.log")
    shutil.copy(data_path, log)
    write_config(config, state, {"bulk": {"type": "file", "path": log, "queue": queue,
                                          "start_at": "beginning"}},
                 True, 2 if persistent else 1)
    started = time.monotonic()
    proc = subprocess.Popen(tailrabbit_cmd(config), cwd=root)
    return started, proc


def publishers(args):
    if args.quick:
        names = ["amqp-publish (C)", "tailrabbit stdin", "tailrabbit file"]
    else:
        names = ["amqp-publish (C)", "amqp-publish, headers", "py-amqp basic_publish",
                 "ceiling, stdin frames", "tailrabbit stdin", "tailrabbit stdin+metrics",
                 "ceiling, file frames", "tailrabbit file"]
    if args.before:
        names += ["tailrabbit stdin (before)", "tailrabbit file (before)"]
    return names


def one_row(args, tmp, data_path, queues, kind, persistent, name):
    """Lines/s of one publisher, timed until every line is in the queue."""
    queue = f"bench-{kind}"
    queues.fresh(queue, durable=True)
    proc = None
    if name.startswith("amqp-publish"):
        started = run_c_tool(queues, data_path, queue, persistent,
                             same_properties="headers" in name)
    elif name.startswith("ceiling"):
        started = run_ceiling(queues, data_path, queue, persistent,
                              "file" if "file" in name else "stdin")
    elif name.startswith("py-amqp"):
        started = run_py_amqp(queues, data_path, queue, persistent)
    elif name.startswith("tailrabbit stdin"):
        started = run_tailrabbit_stdin(queues, data_path, queue, persistent, tmp,
                                       metrics="metrics" in name, root=root_of(name, args))
    else:
        started, proc = run_tailrabbit_file(queues, data_path, queue, persistent, tmp,
                                            root_of(name, args))
    try:
        queues.wait_depth(queue, args.lines)
        elapsed = time.monotonic() - started
    finally:                # a file input never ends: stop it, even on error
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    queues.delete(queue)
    return args.lines / elapsed


def throughput(args, tmp, data_path):
    queues = Queues()
    results = []
    for persistent in (True, False):
        kind = "persistent" if persistent else "transient"
        for _ in range(args.rounds):
            for name in publishers(args):
                for _attempt in range(3):
                    try:
                        rate = one_row(args, tmp, data_path, queues, kind, persistent, name)
                        break
                    except (amqp.exceptions.AMQPError, OSError,
                            subprocess.CalledProcessError) as error:
                        # the broker is shared: another run may close every connection
                        print(f"{kind} {name}: disturbed ({error}); measuring it again",
                              file=sys.stderr)
                        queues = Queues()
                else:
                    raise SystemExit(f"{kind} {name}: failed three times")
                results.append((kind, name, rate))
    print(f"\n## Throughput: {args.lines} lines x {args.size} bytes, until all are in the "
          f"queue (tailrabbit: confirms on)")
    print("ceiling = tailrabbit's own frames (headers, mandatory) pre-encoded and written "
          "raw with confirms: what the broker can take of them")
    print(f"{'kind':<11} {'publisher':<26} {'lines/s':>10} {'vs C tool':>10}")
    for kind in ("persistent", "transient"):
        rows = [r for r in results if r[0] == kind]
        base = statistics.median(r[2] for r in rows if r[1] == "amqp-publish (C)")
        for name in dict.fromkeys(r[1] for r in rows):
            rate = statistics.median(r[2] for r in rows if r[1] == name)
            print(f"{kind:<11} {name:<26} {rate:>10,.0f} {rate / base:>9.2f}x")


def latency(args, tmp, extra=None):
    """FIFO -> consumer latency per line; `extra` input keys (e.g. batch_lines) too."""
    queues = Queues()
    queue = "bench-latency"
    queues.fresh(queue, durable=True)
    fifo = os.path.join(tmp, "latency.fifo")
    config = os.path.join(tmp, "latency.ini")
    write_config(config, os.path.join(tmp, "state-latency"),
                 {"web": {"type": "fifo", "path": fifo, "queue": queue, **(extra or {})}},
                 True, 2)
    proc = subprocess.Popen(tailrabbit_cmd(config), cwd=ROOT)
    samples = []
    consumer = connect()
    channel = consumer.channel()
    channel.basic_consume(queue, no_ack=True, callback=lambda m: samples.extend(
        time.time_ns() - int(line.split(b" ", 1)[0])
        for line in m.body.split(b"\n") if line))
    try:
        fd = open_fifo_writer(fifo)
        count, rate = args.latency_lines, 1000

        def write():
            start = time.monotonic()
            for i in range(count):
                os.write(fd, b"%d GET /index.html 200\n" % time.time_ns())
                delay = start + (i + 1) / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        writer = threading.Thread(target=write)
        writer.start()
        end = time.monotonic() + count / rate + 20
        while len(samples) < count and time.monotonic() < end:
            try:
                consumer.drain_events(timeout=0.5)
            except socket.timeout:
                pass
        writer.join()
        os.close(fd)
        # idle CPU and RSS of the same process, now quiet
        time.sleep(1)
        cpu0 = cpu_seconds(proc.pid)
        time.sleep(args.idle)
        idle_cpu = cpu_seconds(proc.pid) - cpu0
        rss = rss_kib(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        consumer.close()
        queues.delete(queue)
    samples.sort()
    ms = [s / 1e6 for s in samples]
    print(f"\n## Latency: FIFO write -> consumer, {len(ms)} lines at 1,000 lines/s, "
          f"persistent, confirms on{', ' + str(extra) if extra else ''}")
    print(f"p50 {ms[len(ms) // 2]:.2f} ms   p99 {ms[int(len(ms) * 0.99)]:.2f} ms   "
          f"max {ms[-1]:.2f} ms")
    print(f"\n## Idle: {idle_cpu:.3f} CPU s over {args.idle} s "
          f"({100 * idle_cpu / args.idle:.2f}% of one core); RSS {rss / 1024:.1f} MiB")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200000)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--latency-lines", type=int, default=5000)
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--parts", default="throughput,latency,memory",
                        help="which parts to run, comma-separated: throughput, latency, "
                             "memory, batches (issue 11's table, with syslog-ng), "
                             "batch-latency (latency with batch_lines = 100), lines "
                             "(issue 12: multiline and exclude beside plain)")
    parser.add_argument("--quick", action="store_true",
                        help="throughput of the C tool and tailrabbit only")
    parser.add_argument("--before", metavar="DIR",
                        help="an older tailrabbit checkout, measured in the same run")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if args.skip_throughput:
        parts.discard("throughput")
    if not shutil.which("amqp-publish"):
        raise SystemExit("amqp-publish not found: apt-get install amqp-tools")
    with tempfile.TemporaryDirectory() as tmp:
        data_path = os.path.join(tmp, "lines.txt")
        with open(data_path, "wb") as handle:
            for i in range(args.lines):
                handle.write(b"%09d " % i + b"x" * (args.size - 10) + b"\n")
        if "throughput" in parts:
            throughput(args, tmp, data_path)
        if "batches" in parts:
            args.root = ROOT
            batches(args, tmp, data_path, Queues, BROKER)
        if "lines" in parts:
            args.root = ROOT
            lines_table(args, tmp, Queues, BROKER)
        if "latency" in parts:
            latency(args, tmp)
        if "batch-latency" in parts:
            latency(args, tmp, {"batch_lines": 100})
        if "memory" in parts:
            memory(args, tmp, ROOT, args.before)


if __name__ == "__main__":
    main()
