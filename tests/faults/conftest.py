import pytest

from faults.proxy import FaultProxy
from helpers import BROKER, base_config


@pytest.fixture
def proxy():
    host, port = BROKER.rsplit(":", 1)
    fault_proxy = FaultProxy(host, int(port))
    yield fault_proxy
    fault_proxy.close()


@pytest.fixture
def proxied_config(state_dir, proxy):
    """A config whose broker is reached through the fault proxy."""
    config = base_config(state_dir, broker=proxy.address)
    config["rabbitmq"]["heartbeat"] = 2
    config["tailrabbit"]["shutdown_timeout"] = 3
    return config
