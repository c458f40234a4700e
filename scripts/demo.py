"""Run tailrabbit on config/demo.ini, write to its FIFO and log file, show the queues."""

import os
import signal
import socket
import subprocess
import sys
import time

import amqp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATE = os.path.join(ROOT, "demo-state")
FIFO = os.path.join(STATE, "nginx-access.fifo")
LOG = os.path.join(STATE, "api.log")
QUEUES = ("demo.nginx", "demo.api")


def main():
    os.makedirs(STATE, exist_ok=True)
    connection = amqp.Connection("127.0.0.1:5672", socket_settings={socket.TCP_USER_TIMEOUT: 0})
    connection.connect()
    channel = connection.channel()
    for queue in QUEUES:
        channel.queue_delete(queue)
    with open(LOG, "wb") as handle:
        handle.write(b'{"path": "/api/orders", "status": 200, "ms": 12}\n')
    print("$ tailrabbit --config config/demo.ini")
    proc = subprocess.Popen([sys.executable, "-m", "tailrabbit", "--config", "config/demo.ini"],
                            cwd=ROOT)
    try:
        deadline = time.monotonic() + 20
        while True:                     # nginx would open the FIFO like this
            try:
                fd = os.open(FIFO, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("tailrabbit did not open its FIFO")
                time.sleep(0.1)
        os.write(fd, b'127.0.0.1 - - "GET / HTTP/1.1" 200 612\n'
                     b'127.0.0.1 - - "GET /favicon.ico HTTP/1.1" 404 153\n')
        os.close(fd)
        with open(LOG, "ab") as handle:
            handle.write(b'{"path": "/api/users", "status": 201, "ms": 30}\n')
        wanted = {"demo.nginx": 2, "demo.api": 2}
        while any(depth(channel, q) < n for q, n in wanted.items()):
            if time.monotonic() > deadline:
                raise SystemExit("the lines did not arrive in time")
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    for queue in QUEUES:
        print(f"\n== queue {queue} ==")
        while True:
            message = channel.basic_get(queue, no_ack=True)
            if message is None:
                break
            headers = message.properties.get("application_headers", {})
            print(f"{message.body.decode(errors='replace')}    {headers}")
    connection.close()


def depth(channel, queue):
    try:
        return channel.queue_declare(queue, passive=True).message_count
    except amqp.exceptions.NotFound:
        return 0


if __name__ == "__main__":
    main()
