"""The session's 3-node cluster: started once, on the first test that asks for it (no
cluster test selected: no node started), torn down at the end of the session. Each test
gets it with every node running again (a test that killed or stopped one leaves it so)."""

import shutil
import tempfile

import pytest

from cluster.cluster import Cluster
from helpers import Broker, base_config

pytestmark = pytest.mark.skipif(not shutil.which("rabbitmq-server"),
                                reason="rabbitmq-server is not installed")


@pytest.fixture(scope="session")
def cluster_session():
    if not shutil.which("rabbitmq-server"):
        pytest.skip("rabbitmq-server is not installed")
    base = tempfile.mkdtemp(prefix="tr-cluster-")
    nodes = Cluster(base)
    try:
        nodes.start()
        print(f"\n3-node cluster started in {nodes.started_in:.1f} s")
        yield nodes
    finally:
        nodes.cleanup()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def cluster(cluster_session):
    """The cluster with all three nodes running and their apps started."""
    for node in cluster_session.nodes:
        if not node.running:
            node.start()
        elif not _port_open(node.port):
            node.start_app()
    cluster_session.wait_running(len(cluster_session.nodes))
    return cluster_session


def _port_open(port):
    from faults.rabbit_node import port_open
    return port_open(port)


@pytest.fixture
def cluster_config(state_dir, cluster):
    """tailrabbit on the cluster: every node in the host list, first node first."""
    config = base_config(state_dir, broker=cluster.nodes[0].address)
    config["rabbitmq"]["host"] = ", ".join(node.address for node in cluster.nodes)
    config["rabbitmq"]["heartbeat"] = 5
    config["tailrabbit"]["shutdown_timeout"] = 5
    return config


@pytest.fixture
def node_client(cluster):
    """Test-side connections to chosen nodes; queues they declared are deleted after."""
    clients = []

    def connect(node):
        client = Broker(node.address)
        clients.append(client)
        return client
    yield connect
    for client in clients:
        try:
            client.close()
        except Exception:
            pass
