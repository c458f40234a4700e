"""A private RabbitMQ node for fault tests that stop, kill -9 and restart the broker.

The shared node (rabbit@localhost:5672) must never be touched, so this node has its own
name, AMQP and distribution ports, data, logs, config, plugins file and Erlang cookie, all
under base_dir, and listens on 127.0.0.1 only. Data lives in base_dir/mnesia, so durable
queues and persistent messages survive stop()/kill() + start().

The scripts in /usr/lib/rabbitmq/bin are called directly: the /usr/sbin wrappers su to the
rabbitmq user, who cannot read pytest's root-only tmp_path. /etc/rabbitmq/rabbitmq-env.conf
(NODENAME=rabbit@localhost, ERL_FLAGS) is replaced by an empty env file of our own.
"""

import os
import signal
import socket
import subprocess
import uuid

from helpers import wait_for

BIN = "/usr/lib/rabbitmq/bin"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def alive(pid):
    """True while `pid` runs; a zombie (dead, not yet reaped by init) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class PrivateNode:
    def __init__(self, base_dir):
        self.base_dir = os.path.abspath(str(base_dir))
        self.node = f"tr-fault-{uuid.uuid4().hex[:8]}@localhost"
        self.port, self.dist_port = free_port(), free_port()
        self.pid = None
        path = lambda name: os.path.join(self.base_dir, name)  # noqa: E731
        for name in ("mnesia", "log"):
            os.makedirs(path(name), exist_ok=True)
        files = {"rabbitmq.conf": f"listeners.tcp.1 = 127.0.0.1:{self.port}\n",
                 "enabled_plugins": "[].\n", "rabbitmq-env.conf": "",
                 ".erlang.cookie": uuid.uuid4().hex.upper()}
        for name, text in files.items():
            with open(path(name), "w") as handle:
                handle.write(text)
        os.chmod(path(".erlang.cookie"), 0o400)      # Erlang refuses a readable cookie
        self.env = {key: value for key, value in os.environ.items()
                    if not key.startswith(("RABBITMQ_", "ERL_"))}
        self.env.update(
            HOME=self.base_dir,                      # our cookie; never creates /root's
            RABBITMQ_CONF_ENV_FILE=path("rabbitmq-env.conf"),
            RABBITMQ_NODENAME=self.node, RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=path("mnesia"), RABBITMQ_LOG_BASE=path("log"),
            RABBITMQ_PID_FILE=path("rabbit.pid"), RABBITMQ_CONFIG_FILE=path("rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=path("advanced.config"),   # absent on purpose
            RABBITMQ_ENABLED_PLUGINS_FILE=path("enabled_plugins"),
            ERL_EPMD_ADDRESS="127.0.0.1",
            ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}")

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def _run(self, script, *args, check=True, timeout=60):
        return subprocess.run([os.path.join(BIN, script), *args], env=self.env,
                              cwd=self.base_dir, stdin=subprocess.DEVNULL, text=True,
                              capture_output=True, check=check, timeout=timeout)

    def ctl(self, *args, timeout=60):
        """rabbitmqctl -n NODE ARGS...; returns stdout, raises CalledProcessError."""
        return self._run("rabbitmqctl", "-n", self.node, *args, timeout=timeout).stdout

    def start(self, timeout=60):
        """Start detached; return once booted (await_startup) and AMQP accepts connections.
        await_startup fails at once until the node registers with epmd, hence the retry."""
        # Output to a file, not a pipe: the detached VM would hold a pipe open forever.
        with open(os.path.join(self.base_dir, "log", "startup.log"), "ab") as log:
            subprocess.run([os.path.join(BIN, "rabbitmq-server"), "-detached"],
                           env=self.env, cwd=self.base_dir, stdin=subprocess.DEVNULL,
                           stdout=log, stderr=log, check=True, timeout=timeout)
        wait_for(lambda: self._run("rabbitmqctl", "-n", self.node, "await_startup",
                                   "--timeout", "5", check=False).returncode == 0,
                 timeout, interval=0.2, message=f"{self.node} to boot (see {self.base_dir}/log)")
        wait_for(lambda: port_open(self.port), timeout, message=f"AMQP on {self.address}")
        self.pid = self._find_pid()
        return self

    def _find_pid(self):
        """The beam of this node: the only process whose command line has -home base_dir."""
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    argv = handle.read().split(b"\0")
            except OSError:
                continue
            if os.path.basename(argv[0]) == b"beam.smp" and b"-home" in argv and \
                    argv[argv.index(b"-home") + 1] == self.base_dir.encode():
                return int(entry)
        return None

    def _wait_gone(self, timeout=30):
        wait_for(lambda: not alive(self.pid), timeout, message=f"pid {self.pid} to exit")
        wait_for(lambda: not port_open(self.port), timeout, message=f"{self.address} closed")
        self.pid = None

    def stop(self, timeout=60):
        """Graceful stop; returns once the VM has exited and the port is closed."""
        self.ctl("stop", timeout=timeout)
        self._wait_gone(timeout)

    def kill(self, timeout=30):
        """kill -9 the VM (a crash: no clean shutdown of queues or message store)."""
        self.pid = self.pid or self._find_pid()
        os.kill(self.pid, signal.SIGKILL)
        self._wait_gone(timeout)

    def sync_metadata(self):
        """Have the node write its metadata (mnesia's transaction log: queue declarations)
        to disk now. A durable queue that tailrabbit declared about a second before a
        kill -9 under persistent traffic was gone after the restart, with the messages it
        had confirmed ('no queue' in the node's log; 2 of 8 kill rounds on two loaded
        cores): declare-ok does not wait for that log, which is written behind the
        traffic's disk work. With no traffic, a queue declared 0.3 s before survived."""
        return self.ctl("eval", "mnesia:sync_log().")

    def describe(self):
        """The node's view, for a failure message: its queues and connections, and the
        errors and warnings of its log since the last (re)start."""
        parts = []
        for args in (("list_queues", "name", "messages", "pid", "state"),
                     ("list_connections", "name", "state", "connected_at")):
            try:
                parts.append(self.ctl(*args, timeout=30))
            except Exception as error:            # the node may be the problem
                parts.append(f"{args[0]}: {error!r}")
        try:
            with open(os.path.join(self.base_dir, "log", f"{self.node}.log")) as handle:
                text = handle.read()
            text = text[text.rfind("Starting RabbitMQ"):]
            parts.append("\n".join(line for line in text.splitlines()
                                   if "[error]" in line or "[warning]" in line)[-6000:])
        except OSError as error:
            parts.append(f"node log: {error}")
        return "\n".join(parts)

    def stop_app(self):
        """The VM and distribution stay up; AMQP goes away (the listener closes)."""
        self.ctl("stop_app")
        wait_for(lambda: not port_open(self.port), 30, message=f"{self.address} closed")

    def start_app(self, timeout=60):
        self.ctl("start_app", timeout=timeout)
        wait_for(lambda: port_open(self.port), timeout, message=f"AMQP on {self.address}")

    def set_memory_watermark(self, fraction):
        """0 blocks every publishing connection (a memory alarm); 0.4 is the default."""
        return self.ctl("set_vm_memory_high_watermark", str(fraction))

    def cleanup(self):
        """Make sure no VM of ours is left: kill -9 whatever runs (even a half-started
        node whose pid start() never learned). Idempotent, never raises."""
        try:
            self.pid = self.pid if self.pid and alive(self.pid) else self._find_pid()
            if self.pid:
                self.kill()
        except Exception:
            pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
