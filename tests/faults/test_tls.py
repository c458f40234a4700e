"""TLS against a private node with a TLS listener and certificates made here with openssl:
peer and hostname verified by default; a wrong CA is a clear ERROR, not a crash."""

import os
import shutil
import subprocess
import tempfile

import pytest

from faults.rabbit_node import PrivateNode, free_port, port_open
from helpers import Broker, base_config, run_cli, wait_for, write_config
from integration.test_fifo import open_writer

# one xdist worker runs this module: its broker node (module scope) starts once
pytestmark = [pytest.mark.skipif(not (shutil.which("rabbitmq-server") and
                                      shutil.which("openssl")),
                                 reason="needs rabbitmq-server and openssl"),
              pytest.mark.xdist_group("tls")]


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(directory, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.pem",
            cwd=directory)
    return os.path.join(directory, f"{name}.pem")


def make_cert(directory, ca, name, subject):
    ext = os.path.join(directory, f"{name}.ext")
    with open(ext, "w") as handle:
        handle.write("subjectAltName = DNS:localhost, IP:127.0.0.1\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={subject}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=directory)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", f"{name}.pem",
            cwd=directory)


@pytest.fixture(scope="module")
def tls_node():
    base = tempfile.mkdtemp(prefix="tr-tls-")
    certs = os.path.join(base, "certs")
    os.makedirs(certs)
    make_ca(certs, "ca")
    make_ca(certs, "other-ca")
    make_cert(certs, "ca", "server", "localhost")
    make_cert(certs, "ca", "client", "tailrabbit")
    node = PrivateNode(os.path.join(base, "node"))
    node.tls_port = free_port()
    with open(os.path.join(node.base_dir, "rabbitmq.conf"), "a") as conf:
        conf.write(f"listeners.ssl.1 = 127.0.0.1:{node.tls_port}\n"
                   f"ssl_options.cacertfile = {certs}/ca.pem\n"
                   f"ssl_options.certfile = {certs}/server.pem\n"
                   f"ssl_options.keyfile = {certs}/server.key\n"
                   "ssl_options.verify = verify_peer\n"          # mutual TLS
                   "ssl_options.fail_if_no_peer_cert = true\n")
    node.certs = certs
    try:
        node.start()
        wait_for(lambda: port_open(node.tls_port), timeout=30, message="the TLS listener")
        node.ctl("add_user", "tr-user", TLS_PASSWORD)
        node.ctl("set_permissions", "-p", "/", "tr-user", ".*", ".*", ".*")
        yield node
    finally:
        node.cleanup()
        shutil.rmtree(base, ignore_errors=True)


TLS_PASSWORD = "tls-Pa55word-never-logged"


def tls_config(state_dir, node, ca, client_cert=True):
    config = base_config(state_dir, broker=f"localhost:{node.tls_port}")
    config["rabbitmq"].update(ssl="True", ssl_ca=ca, user="tr-user", password=TLS_PASSWORD)
    if client_cert:
        config["rabbitmq"].update(ssl_cert=f"{node.certs}/client.pem",
                                  ssl_key=f"{node.certs}/client.key")
    return config


def test_tls_connects_with_peer_and_hostname_verified(tls_node, state_dir, queue_name,
                                                      tailrabbit_factory, tmp_path):
    config = tls_config(state_dir, tls_node, f"{tls_node.certs}/ca.pem")
    path = str(tmp_path / "web.fifo")
    config["input:web"] = {"type": "fifo", "path": path, "queue": queue_name}
    check = run_cli("--check", "-c", str(write_config(tmp_path / "check.ini", config)))
    assert check.returncode == 0, check.stdout + check.stderr
    assert TLS_PASSWORD.encode() not in check.stdout + check.stderr
    proc = tailrabbit_factory(config)
    fd = open_writer(path)
    os.write(fd, b"over tls 1\nover tls 2\n")
    os.close(fd)
    broker = Broker(tls_node.address)             # checks over the plain listener
    try:
        broker.wait_depth(queue_name, 2)
        assert proc.stop() == 0, proc.log()
        assert [m.body for m in broker.consume_all(queue_name)] == [b"over tls 1",
                                                                   b"over tls 2"]
        broker.queues.append(queue_name)
    finally:
        broker.close()


def test_a_wrong_ca_is_refused_with_a_clear_error(tls_node, state_dir, queue_name,
                                                  tailrabbit_factory, tmp_path):
    config = tls_config(state_dir, tls_node, f"{tls_node.certs}/other-ca.pem")
    config["input:web"] = {"type": "fifo", "path": str(tmp_path / "w.fifo"),
                           "queue": queue_name}
    proc = tailrabbit_factory(config)
    proc.wait_for_event("connect_refused", timeout=30,
                        containing="certificate verify failed")
    assert any("ERROR" in line and "certificate verify failed" in line
               for line in proc.log().splitlines())
    assert proc.process.poll() is None            # keeps running, retrying
    assert "Traceback" not in proc.log()
    assert proc.stop() == 0
    check = run_cli("--check", "-c", str(write_config(tmp_path / "check.ini", config)))
    assert check.returncode == 69
    assert b"certificate verify failed" in check.stdout
    assert TLS_PASSWORD.encode() not in check.stdout + check.stderr


def test_without_a_client_certificate_the_broker_refuses(tls_node, state_dir, queue_name,
                                                         tmp_path):
    config = tls_config(state_dir, tls_node, f"{tls_node.certs}/ca.pem", client_cert=False)
    config["input:web"] = {"type": "stdin", "queue": queue_name}
    check = run_cli("--check", "-c", str(write_config(tmp_path / "check.ini", config)))
    assert check.returncode == 69, check.stdout + check.stderr
    config = tls_config(state_dir, tls_node, f"{tls_node.certs}/ca.pem")
    check = run_cli("--check", "-c", str(write_config(tmp_path / "check.ini", config)))
    assert check.returncode == 0, check.stdout + check.stderr
