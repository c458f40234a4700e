"""A private 3-node RabbitMQ cluster on 127.0.0.1 for the cluster tests and bench/cluster.py.

Each node is a PrivateNode (tests/faults/rabbit_node.py: own node name, AMQP and
distribution ports, data and log dirs, config, empty plugins file, loopback only); here the
three share one Erlang cookie (nodes of a cluster must) and find each other through
`classic_config` peer discovery: the first node boots alone, the other two boot at the same
time and join it while booting. Rejected: `stop_app; join_cluster; start_app` per node after
a standalone boot (two extra app restarts, about 8 s more on 2 cores). The shared broker on
5672 is never touched: every rabbitmqctl call names one of our nodes and uses our cookie.

The VMs run with `+sbwt none` (no scheduler busy-waiting): three idle nodes would otherwise
spin on the 2 cores the tests and the other engineers share.
"""

import json
import os
import signal
import threading
import time
import uuid

from faults.rabbit_node import PrivateNode, alive
from helpers import wait_for

ERL_ARGS = "+sbwt none +sbwtdcpu none +sbwtdio none"


class ClusterNode(PrivateNode):
    """A PrivateNode with a given name and cookie, and peers to join at first boot."""

    def __init__(self, base_dir, name, cookie, peers):
        super().__init__(base_dir)
        self.node = name
        self.env["RABBITMQ_NODENAME"] = name
        self.env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] = ERL_ARGS
        cookie_path = os.path.join(self.base_dir, ".erlang.cookie")
        os.chmod(cookie_path, 0o600)
        with open(cookie_path, "w") as handle:
            handle.write(cookie)
        os.chmod(cookie_path, 0o400)
        lines = [f"listeners.tcp.1 = 127.0.0.1:{self.port}",
                 "cluster_formation.peer_discovery_backend = classic_config",
                 *(f"cluster_formation.classic_config.nodes.{i} = {peer}"
                   for i, peer in enumerate(peers, 1)),
                 "cluster_partition_handling = ignore"]
        with open(os.path.join(self.base_dir, "rabbitmq.conf"), "w") as handle:
            handle.write("\n".join(lines) + "\n")

    @property
    def short(self):
        """The name without @localhost (log lines name nodes in full)."""
        return self.node.split("@")[0]

    def pid_from_file(self):
        """The VM's pid from its own pid file, checked to be our beam (never another)."""
        try:
            with open(os.path.join(self.base_dir, "rabbit.pid")) as handle:
                pid = int(handle.read().strip())
        except (OSError, ValueError):
            return self._find_pid()
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            return None
        ours = b"-home" in argv and argv[argv.index(b"-home") + 1] == self.base_dir.encode()
        return pid if ours else self._find_pid()

    def kill(self, timeout=30):
        """kill -9 this node's VM, found by its own pid file."""
        self.pid = self.pid_from_file()
        os.kill(self.pid, signal.SIGKILL)
        self._wait_gone(timeout)

    @property
    def running(self):
        return self.pid is not None and alive(self.pid)


class Cluster:
    """Three joined nodes: `nodes[i].kill()`, `.start()`, `.stop_app()`, `.start_app()`."""

    def __init__(self, base_dir, size=3):
        tag = uuid.uuid4().hex[:6]
        names = [f"tr-cl{i + 1}-{tag}@localhost" for i in range(size)]
        cookie = uuid.uuid4().hex.upper()
        self.nodes = [ClusterNode(os.path.join(str(base_dir), f"n{i + 1}"), name, cookie,
                                  names[:1])
                      for i, name in enumerate(names)]
        self.started_in = None

    def start(self, timeout=120):
        began = time.monotonic()
        self.nodes[0].start(timeout)
        errors = []

        def boot(node):
            try:
                node.start(timeout)
            except Exception as error:      # reported below, in the test's thread
                errors.append(error)
        threads = [threading.Thread(target=boot, args=(node,)) for node in self.nodes[1:]]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        self.wait_running(len(self.nodes), timeout)
        self.started_in = time.monotonic() - began
        return self

    # ---- what the cluster says ------------------------------------------------------

    def any_up(self):
        for node in self.nodes:
            if node.running and _answers(node):
                return node
        raise AssertionError("no cluster node is up")

    def ctl_json(self, *args):
        return json.loads(self.any_up().ctl(*args, "--formatter", "json", timeout=30) or "[]")

    def running_nodes(self):
        status = self.ctl_json("cluster_status")
        return sorted(status.get("running_nodes", []))

    def wait_running(self, count, timeout=60):
        wait_for(lambda: len(self.running_nodes()) == count, timeout, interval=0.3,
                 message=f"{count} running nodes in cluster_status")

    def connections(self):
        """[(connection_name client property, node)] of every AMQP connection. 3.10 has
        no `node` column for connections: the server port says which node (ours differ)."""
        by_port = {node.port: node.node for node in self.nodes}
        rows = self.ctl_json("list_connections", "port", "client_properties")
        return [(_property(row.get("client_properties") or [], "connection_name"),
                 by_port.get(row.get("port"))) for row in rows]

    def node_of(self, pid):
        """The node the tailrabbit with this pid is connected to, or None."""
        for name, node in self.connections():
            if name and name.endswith(f" pid {pid}"):
                return node
        return None

    def leader_of(self, queue):
        """The node leading quorum queue `queue` (None while no leader is known)."""
        for row in self.ctl_json("list_queues", "name", "leader"):
            if row.get("name") == queue:
                return row.get("leader") or None
        return None

    def home_of(self, queue):
        """The node a classic queue lives on (its pid names no node: ask each node for
        its --local queues)."""
        for node in self.nodes:
            if node.running and _answers(node):
                rows = json.loads(node.ctl("list_queues", "--local", "name", "--formatter",
                                           "json", timeout=30) or "[]")
                if any(row.get("name") == queue for row in rows):
                    return node.node
        return None

    def by_name(self, node_name):
        return next(node for node in self.nodes if node.node == node_name)

    def cleanup(self):
        for node in self.nodes:
            node.cleanup()


def _answers(node):
    from faults.rabbit_node import port_open
    return port_open(node.port)


def _property(props, key):
    """client_properties as JSON: a list of [key, type, value] triples, or a dict."""
    if isinstance(props, dict):
        return props.get(key)
    for item in props:
        if isinstance(item, (list, tuple)) and len(item) == 3 and item[0] == key:
            return item[2]
    return None

