"""The real programs: supervisord runs tailrabbit from config/supervisord.conf, and nginx
writes its access log into a FIFO that tailrabbit reads (reopen and reload included)."""

import configparser
import os
import shutil
import subprocess
import sys
import urllib.request

import pytest

from helpers import REPO, unique, wait_for, write_config

SUPERVISORD = os.path.join(os.path.dirname(sys.executable), "supervisord")
SUPERVISORCTL = os.path.join(os.path.dirname(sys.executable), "supervisorctl")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def program_section(tmp_path, config_path):
    """config/supervisord.conf's program, with this machine's paths."""
    parser = configparser.RawConfigParser()
    parser.read(os.path.join(REPO, "config", "supervisord.conf"))
    program = dict(parser["program:tailrabbit"])
    program.update(command=f"{sys.executable} -m tailrabbit --config {config_path}",
                   directory=REPO, stdout_logfile=str(tmp_path / "tailrabbit.out"))
    program.pop("user", None)
    return program


@pytest.mark.skipif(not os.path.exists(SUPERVISORD), reason="supervisor is not installed")
def test_supervisorctl_stop_ends_tailrabbit_cleanly_with_nothing_lost(
        broker, config, queue_name, tmp_path):
    fifo = str(tmp_path / "web.fifo")
    config["input:web"] = {"type": "fifo", "path": fifo, "queue": queue_name}
    config_path = write_config(tmp_path / "inputs.ini", config)
    program = program_section(tmp_path, config_path)
    assert program["stopsignal"] == "TERM"
    assert int(program["stopwaitsecs"]) >= 10 + 20       # shutdown_timeout + 20
    sock = str(tmp_path / "supervisor.sock")
    conf = tmp_path / "supervisord.conf"
    conf.write_text(
        f"[supervisord]\nlogfile={tmp_path}/supervisord.log\npidfile={tmp_path}/sd.pid\n"
        f"[unix_http_server]\nfile={sock}\n"
        f"[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = "
        f"supervisor.rpcinterface:make_main_rpcinterface\n"
        f"[supervisorctl]\nserverurl=unix://{sock}\n"
        "[program:tailrabbit]\n" + "".join(f"{k} = {v}\n" for k, v in program.items()))
    subprocess.run([SUPERVISORD, "-c", str(conf)], check=True)
    ctl = [SUPERVISORCTL, "-c", str(conf)]
    try:
        wait_for(lambda: b"RUNNING" in subprocess.run(ctl + ["status", "tailrabbit"],
                                                     capture_output=True).stdout,
                 message="tailrabbit RUNNING under supervisord")
        wait_for(lambda: os.path.exists(fifo), message="the FIFO")
        with open(fifo, "wb") as pipe:
            pipe.write(b"".join(b"supervised %04d\n" % i for i in range(2000)))
        stop = subprocess.run(ctl + ["stop", "tailrabbit"], capture_output=True, text=True)
        assert "stopped" in stop.stdout, stop.stdout + stop.stderr
        log = (tmp_path / "supervisord.log").read_text()
        assert "stopped: tailrabbit (exit status 0)" in log, log
    finally:
        subprocess.run(ctl + ["shutdown"], capture_output=True)
    assert [m.body for m in broker.consume_all(queue_name)] == [
        b"supervised %04d" % i for i in range(2000)]


@pytest.mark.skipif(not os.path.exists(NGINX), reason="nginx is not installed")
def test_nginx_access_log_through_a_fifo_with_reopen_and_reload(
        broker, config, queue_name, tailrabbit_factory, tmp_path):
    fifo = str(tmp_path / "access.fifo")
    config["input:nginx"] = {"type": "fifo", "path": fifo, "queue": queue_name}
    proc = tailrabbit_factory(config)                 # before nginx: the FIFO has a reader
    wait_for(lambda: os.path.exists(fifo), message="the FIFO")
    with __import__("socket").socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"""
daemon on;
worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/nginx-error.log;
user root;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
    log_format plain '$request_uri $status';
    access_log {fifo} plain;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok\\n"; }}
    }}
}}
""")
    nginx = [NGINX, "-c", str(conf), "-p", str(tmp_path)]
    subprocess.run(nginx, check=True)
    tag = unique("req")
    try:
        def request(i):
            url = f"http://127.0.0.1:{port}/{tag}/{i}"
            with urllib.request.urlopen(url, timeout=5) as reply:
                assert reply.status == 200
        for i in range(300):
            request(i)
        subprocess.run(nginx + ["-s", "reopen"], check=True)
        for i in range(300, 600):
            request(i)
        subprocess.run(nginx + ["-s", "reload"], check=True)
        for i in range(600, 900):
            request(i)
        broker.wait_depth(queue_name, 900)
    finally:
        subprocess.run(nginx + ["-s", "quit"], capture_output=True)
    assert proc.stop() == 0, proc.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert sorted(bodies) == sorted(b"/%s/%d 200" % (tag.encode(), i) for i in range(900))
