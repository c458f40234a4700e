import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from faults.proxy import FaultProxy  # noqa: E402
from helpers import BROKER, Broker, Tailrabbit, base_config, unique, write_config  # noqa: E402

CLUSTER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cluster")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """The cluster tests share one 3-node cluster (a session fixture): with pytest-xdist
    (pytest.ini: -n 4 --dist loadgroup) they all go to one worker, so it starts once.
    Modules with a broker node of their own mark themselves the same way. tryfirst:
    xdist reads the marks in its own hook of this name; run after it, this one grouped
    nothing and every worker with a cluster test started a cluster of its own (one of
    them timed out booting in CI)."""
    for item in items:
        if str(item.path).startswith(CLUSTER_DIR + os.sep):
            item.add_marker(pytest.mark.xdist_group("cluster"))


@pytest.fixture
def broker():
    client = Broker()
    yield client
    client.close()


@pytest.fixture
def tailrabbit_factory(tmp_path):
    """Start tailrabbit processes on configs built from dicts; stops leftovers after."""
    started = []
    passwords = set()

    def start(sections, stdin=None, name="tailrabbit", args=()):
        password = sections.get("rabbitmq", {}).get("password")
        if password and password != "guest":
            passwords.add(password)
        path = write_config(tmp_path / f"{name}.ini", sections)
        kwargs = {} if stdin is None else {"stdin": stdin}
        process = Tailrabbit(str(path), str(tmp_path / f"{name}.log"), args=args, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        for password in passwords:           # a password never reaches a log line
            assert password not in process.log(), f"{process.log_path} shows a password"


@pytest.fixture
def state_dir(tmp_path):
    path = tmp_path / "state"
    path.mkdir()
    return str(path)


@pytest.fixture
def config(state_dir):
    """A base config dict on the shared broker; tests add their inputs."""
    return base_config(state_dir)


@pytest.fixture
def queue_name(broker):
    name = unique("tr")
    broker.queues.append(name)
    return name


@pytest.fixture
def proxy():
    host, port = BROKER.rsplit(":", 1)
    fault_proxy = FaultProxy(host, int(port))
    yield fault_proxy
    fault_proxy.close()


@pytest.fixture
def proxied_config(state_dir, proxy):
    """A config whose broker is reached through the fault proxy (faults/proxy.py)."""
    config = base_config(state_dir, broker=proxy.address)
    config["rabbitmq"]["heartbeat"] = 2
    config["tailrabbit"]["shutdown_timeout"] = 3
    return config
