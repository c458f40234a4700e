"""Other shippers measured beside tailrabbit in the same run: syslog-ng (file -> amqp()).

syslog-ng is configured as FIELD-NOTES ("syslog-ng as a benchmark peer") says: the file
source with flags(no-parse) so a line is the message as is, the amqp() destination with
body("${MESSAGE}") (without it the body is empty), value-pairs excluding everything
(without it every message carries a dozen headers), persistent, the default exchange,
no declare. It publishes without confirms: compare it with tailrabbit's `confirm = False`.
"""

import os
import shutil
import subprocess

PACKAGES = ("syslog-ng-core", "syslog-ng-mod-amqp")
AMQP_MODULE_GLOB = "/usr/lib/syslog-ng"

CONFIG = """\
@version: 3.38
options {{ flush-lines(0); log-fifo-size(100000); stats-freq(0); }};
source s {{ file("{path}" follow-freq(1) flags(no-parse) log-fetch-limit(1000)
    log-iw-size(100000)); }};
destination d {{ amqp(host("{host}") port({port}) vhost("/") username("guest")
    password("guest") exchange("") exchange-declare(no) routing-key("{queue}")
    body("${{MESSAGE}}") persistent({persistent})
    value-pairs(scope(nv-pairs) exclude("*"))); }};
log {{ source(s); destination(d); flags(flow-control); }};
"""


def ensure_syslog_ng():
    """The syslog-ng binary, installed with apt-get when missing; None if that fails."""
    binary = shutil.which("syslog-ng") or (
        "/usr/sbin/syslog-ng" if os.path.exists("/usr/sbin/syslog-ng") else None)
    if binary and _has_amqp():
        return binary
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
    if subprocess.run(command, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True)
        if subprocess.run(command, env=env, capture_output=True).returncode != 0:
            return None
    return shutil.which("syslog-ng") or "/usr/sbin/syslog-ng"


def _has_amqp():
    for root, _, files in os.walk(AMQP_MODULE_GLOB):
        if any(name.startswith("libafamqp") for name in files):
            return True
    return False


def start_syslog_ng(binary, tmp, data_path, queue, broker, persistent=True):
    """Start syslog-ng shipping a copy of data_path into `queue`; returns the Popen."""
    work = os.path.join(tmp, "syslog-ng")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    log_path = os.path.join(work, "in.log")
    shutil.copy(data_path, log_path)
    config = os.path.join(work, "syslog-ng.conf")
    with open(config, "w") as handle:
        handle.write(CONFIG.format(path=log_path, host=broker[0], port=broker[1],
                                   queue=queue, persistent="yes" if persistent else "no"))
    return subprocess.Popen(
        [binary, "-F", "--no-caps", "-f", config, "-R", os.path.join(work, "persist"),
         "-p", os.path.join(work, "pid"), "-c", os.path.join(work, "ctl")],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "stderr"), "wb"))
