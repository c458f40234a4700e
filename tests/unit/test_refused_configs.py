"""Configs that can never work, as a table: config text -> the one line on stderr, exit 78.

Each case runs twice as a real process: the daemon (`python -m tailrabbit -c`) and
`--check`. Both must refuse at load, before any connection, with the same line naming
file, section, key and problem, never a traceback and never exit 1 (supervisord and
systemd restart exit 1 forever; 78 stops them). The accepted boundary values are checked
in-process below (config.load), so the table stays about what is refused.

In the texts, {tmp} is a directory holding: state/ (the state_dir), regular.txt (a regular
file), adir/ (a directory), latin1.pw (a password file that is not UTF-8) and a.fifo (a
FIFO) with fifo-link, a symlink to it, and state-link to state/.
"""

import os

import pytest

from helpers import run_cli
from tailrabbit import config

STATE = "[tailrabbit]\nstate_dir = {tmp}/state\n"
BIG = "99999999999999999999999"
TOO_LONG_NAME = "n" * 101


def _python_says(template, value):
    try:
        template % value
    except TypeError as error:
        return str(error)


# Python's own words, which changed in 3.11 ("a number is required" before, "a real
# number is required" since)
BAD_CONVERSION = _python_says("%d", "str")

# (id, config text, the stderr line after "tailrabbit: CONFIG: ")
REFUSED = [
    # 1. names AMQP carries in a shortstr (at most 255 bytes), and arguments as a table
    ("queue-256-bytes", STATE + "[input:a]\ntype = stdin\nqueue = " + "q" * 256 + "\n",
     "[input:a] queue: is 256 bytes in UTF-8; AMQP carries at most 255"),
    ("queue-128-chars-256-bytes", STATE + "[input:a]\ntype = stdin\nqueue = " + "é" * 128,
     "[input:a] queue: is 256 bytes in UTF-8; AMQP carries at most 255"),
    ("seed-queue", STATE + "[rabbitmq]\nqueue = " + "q" * 300 + "\n",
     "[rabbitmq] queue: is 300 bytes in UTF-8; AMQP carries at most 255"),
    ("exchange", STATE + "[input:a]\ntype = stdin\nexchange = " + "x" * 256 + "\n",
     "[input:a] exchange: is 256 bytes in UTF-8; AMQP carries at most 255"),
    ("routing-key", STATE + "[input:a]\ntype = stdin\nrouting_key = " + "r" * 256 + "\n",
     "[input:a] routing_key: is 256 bytes in UTF-8; AMQP carries at most 255"),
    ("vhost", STATE + "[rabbitmq]\nvhost = " + "v" * 300 + "\n[input:a]\ntype = stdin\n",
     "[rabbitmq] vhost: is 300 bytes in UTF-8; AMQP carries at most 255"),
    ("user", STATE + "[rabbitmq]\nuser = " + "u" * 300 + "\n[input:a]\ntype = stdin\n",
     "[rabbitmq] user: is 300 bytes in UTF-8; AMQP carries at most 255"),
    ("arguments-big-int", STATE + '[input:a]\ntype = stdin\narguments = {"x-max-length": '
     + BIG + "}\n",
     f"[input:a] arguments: x-max-length = {BIG} does not fit in an AMQP table "
     f"(integers are at most 64 bits)"),
    ("arguments-nested-big-int", STATE + '[input:a]\ntype = stdin\narguments = '
     '{"x-a": [1, {"k": -' + BIG + "}]}\n",
     f"[input:a] arguments: x-a[1].k = -{BIG} does not fit in an AMQP table "
     f"(integers are at most 64 bits)"),
    ("arguments-long-key", STATE + '[input:a]\ntype = stdin\narguments = {"' + "k" * 256
     + '": 1}\n',
     "[input:a] arguments: key " + "k" * 40 + "... is 256 bytes in UTF-8; "
     "AMQP carries at most 255"),
    # 2. input names become file names in state_dir
    ("name-escapes", STATE + "[input:a/../../../x]\ntype = stdin\n",
     "[input:a/../../../x]: the input name holds '/': only letters, digits, '.', '_' and "
     "'-' (it names files in state_dir)"),
    ("name-space", STATE + "[input:a b]\ntype = stdin\n",
     "[input:a b]: the input name holds ' ': only letters, digits, '.', '_' and "
     "'-' (it names files in state_dir)"),
    ("name-leading-dot", STATE + "[input:.hidden]\ntype = stdin\n",
     "[input:.hidden]: the input name must not start with '.' "
     "(it names files in state_dir)"),
    ("name-too-long", STATE + f"[input:{TOO_LONG_NAME}]\ntype = stdin\n",
     f"[input:{TOO_LONG_NAME}]: the input name is 101 bytes; at most 100 "
     "(it names files in state_dir)"),
    # 3. seconds are finite (and at most a year: larger ones overflow socket timeouts)
    ("shutdown-timeout-nan", "[tailrabbit]\nstate_dir = {tmp}/state\nshutdown_timeout = nan\n",
     "[tailrabbit] shutdown_timeout: must be a finite number of seconds, got 'nan'"),
    ("stats-interval-inf", "[tailrabbit]\nstate_dir = {tmp}/state\nstats_interval = inf\n",
     "[tailrabbit] stats_interval: must be a finite number of seconds, got 'inf'"),
    ("connect-timeout-minus-inf", STATE + "[rabbitmq]\nconnect_timeout = -inf\n",
     "[rabbitmq] connect_timeout: must be a finite number of seconds, got '-inf'"),
    ("connect-timeout-huge", STATE + "[rabbitmq]\nconnect_timeout = 1e12\n",
     "[rabbitmq] connect_timeout: must be at most 31536000 seconds (a year), got '1e12'"),
    ("refresh-nan", STATE + "[rabbitmq]\nrefresh = NaN\n",
     "[rabbitmq] refresh: must be a finite number of seconds, got 'NaN'"),
    ("heartbeat-nan", STATE + "[rabbitmq]\nheartbeat = nan\n",
     "[rabbitmq] heartbeat: must be a whole number, got 'nan'"),
    ("rotate-wait-nan", STATE + "[input:a]\ntype = file\npath = {tmp}/a.log\n"
     "rotate_wait = nan\n",
     "[input:a] rotate_wait: must be a finite number of seconds, got 'nan'"),
    ("rotate-wait-negative", STATE + "[input:a]\ntype = file\npath = {tmp}/a.log\n"
     "rotate_wait = -1\n",
     "[input:a] rotate_wait: must be at least 0, got -1.0"),
    # 4. a log format must format a record
    ("log-format-no-field", STATE + "[logging]\nlog_format = plain text\n",
     "[logging] log_format: cannot format a log record (Invalid format 'plain text' for "
     "'%' style); write fields as %%(message)s"),
    ("log-format-unknown-field", STATE + "[logging]\nlog_format = %%(nosuchfield)s\n",
     "[logging] log_format: cannot format a log record (Formatting field not found in "
     "record: 'nosuchfield'); "
     "write fields as %%(message)s"),
    ("log-format-bad-conversion", STATE + "[logging]\nlog_format = %%(message)d\n",
     f"[logging] log_format: cannot format a log record ({BAD_CONVERSION}); write fields "
     "as %%(message)s"),
    ("log-datefmt-nul", STATE + "[logging]\nlog_datefmt = %%Y\x00\n",
     "[logging] log_datefmt: cannot format a time (embedded null character); write fields "
     "as %%Y-%%m-%%d %%H:%%M:%%S"),
    # 5. FIFOs and stdin belong to one input; paths that exist must be what they claim
    ("two-inputs-one-fifo", STATE + "[input:a]\ntype = fifo\npath = {tmp}/a.fifo\n"
     "[input:b]\ntype = fifo\npath = {tmp}/fifo-link\n",
     "[input:b] path: {tmp}/fifo-link is also read by input a (a FIFO's lines would split "
     "between them at random)"),
    ("fifo-and-file-one-path", STATE + "[input:a]\ntype = file\npath = {tmp}/a.fifo\n"
     "[input:b]\ntype = fifo\npath = {tmp}/a.fifo\n",
     "[input:b] path: {tmp}/a.fifo is also read by input a (a FIFO's lines would split "
     "between them at random)"),
    ("two-stdin", STATE + "[input:a]\ntype = stdin\n[input:b]\ntype = stdin\n",
     "[input:b] type: only one input can read stdin"),
    ("fifo-is-a-regular-file", STATE + "[input:a]\ntype = fifo\npath = {tmp}/regular.txt\n",
     "[input:a] path: {tmp}/regular.txt exists and is not a FIFO"),
    ("file-path-is-a-directory", STATE + "[input:a]\ntype = file\npath = {tmp}/adir\n",
     "[input:a] path: {tmp}/adir is a directory; name a file, or a glob such as "
     "{tmp}/adir/*.log"),
    # 6. a password file that is not UTF-8
    ("password-file-latin1", STATE + "[rabbitmq]\npassword_file = {tmp}/latin1.pw\n",
     "[rabbitmq] password_file: {tmp}/latin1.pw is not UTF-8 text"),
    # 7. a file input that can match tailrabbit's own files
    ("glob-in-state-dir", STATE + "[input:a]\ntype = file\npath = {tmp}/state/*.json\n",
     "[input:a] path: {tmp}/state/*.json can match files under state_dir {tmp}/state "
     "(tailrabbit's own files)"),
    ("glob-reaches-state-dir", STATE + "[input:a]\ntype = file\npath = {tmp}/*/x.json\n",
     "[input:a] path: {tmp}/*/x.json can match files under state_dir {tmp}/state "
     "(tailrabbit's own files)"),
    ("path-in-state-dir", STATE + "[input:a]\ntype = file\n"
     "path = {tmp}/state/checkpoints-a.json\n",
     "[input:a] path: {tmp}/state/checkpoints-a.json can match files under state_dir "
     "{tmp}/state (tailrabbit's own files)"),
    ("glob-under-a-linked-state-dir", "[tailrabbit]\nstate_dir = {tmp}/state-link\n"
     "[input:a]\ntype = file\npath = {tmp}/state/spool/*/*\n",
     "[input:a] path: {tmp}/state/spool/*/* can match files under state_dir {tmp}/state-link "
     "(tailrabbit's own files)"),
    # 8. a line longer than RabbitMQ's default max_message_size
    ("max-line-bytes", STATE + "[input:a]\ntype = stdin\nmax_line_bytes = 134217729\n",
     "[input:a] max_line_bytes: must be at most 134217728 (128 MiB: RabbitMQ's default "
     "max_message_size; its hard limit is 512 MiB), got 134217729"),
]


def make_tree(tmp):
    (tmp / "state").mkdir(mode=0o700)
    (tmp / "state-link").symlink_to(tmp / "state")
    (tmp / "adir").mkdir()
    (tmp / "regular.txt").write_text("not a fifo\n")
    (tmp / "latin1.pw").write_bytes("pässwörd\n".encode("latin-1"))
    os.mkfifo(tmp / "a.fifo")
    (tmp / "fifo-link").symlink_to(tmp / "a.fifo")


@pytest.fixture
def tree(tmp_path):
    make_tree(tmp_path)
    return tmp_path


def write_case(tmp, text):
    path = tmp / "bad.ini"
    path.write_text(text.replace("{tmp}", str(tmp)), encoding="utf-8")
    return path


@pytest.mark.parametrize("mode", ["daemon", "check"])
@pytest.mark.parametrize("text,line", [case[1:] for case in REFUSED],
                         ids=[case[0] for case in REFUSED])
def test_refused_config_exits_78_with_one_line(tree, mode, text, line):
    path = write_case(tree, text)
    args = ("-c", str(path)) if mode == "daemon" else ("--check", "-c", str(path))
    result = run_cli(*args, timeout=20)
    stderr = result.stderr.decode()
    assert (result.returncode, stderr.splitlines()) == (
        78, [f"tailrabbit: {path}: {line.replace('{tmp}', str(tree))}"]), stderr
    if mode == "check":
        assert b"login accepted" not in result.stdout     # refused before any broker


def test_the_table_matches_config_load(tree):
    """The same lines from config.load in-process (what a SIGHUP reload logs)."""
    for name, text, line in REFUSED:
        path = write_case(tree, text)
        with pytest.raises(config.ConfigError) as error:
            config.load(str(path), environ={})
        assert str(error.value) == f"{path}: {line.replace('{tmp}', str(tree))}", name


ACCEPTED = [
    ("queue-255-bytes", STATE + "[input:a]\ntype = stdin\nqueue = " + "é" * 127 + "q\n"),
    ("arguments-64-bit", STATE + '[input:a]\ntype = stdin\narguments = {"x-max-length": '
     '9223372036854775807, "x-b": [-9223372036854775808, {"k": null}], "'
     + "k" * 255 + '": 1.5}\n'),
    ("name-100-bytes", STATE + "[input:" + "n" * 100 + "]\ntype = stdin\n"),
    ("name-chars", STATE + "[input:web-1.access_log]\ntype = stdin\n"),
    ("seconds-at-a-year", STATE + "[rabbitmq]\nconnect_timeout = 31536000\nrefresh = None\n"
     "[input:a]\ntype = stdin\n"),
    ("log-format-fields", STATE + "[logging]\n"
     "log_format = %%(name)s %%(levelno)d %%(message)s\n"
     "log_datefmt = %%Y-%%m-%%dT%%H:%%M:%%S\n"),
    ("two-files-one-path-fan-out", STATE + "[input:a]\ntype = file\npath = {tmp}/x.log\n"
     "queue = q1\n[input:b]\ntype = file\npath = {tmp}/x.log\nqueue = q2\n"),
    ("fifo-existing", STATE + "[input:a]\ntype = fifo\npath = {tmp}/a.fifo\n"),
    ("glob-beside-state-dir", STATE + "[input:a]\ntype = file\npath = {tmp}/adir/*.log\n"),
    ("glob-that-cannot-reach-state-dir",
     "[tailrabbit]\nstate_dir = {tmp}/adir/deeper/state\n"
     "[input:a]\ntype = file\npath = {tmp}/*/x.log\n"        # one level: never deeper
     "[input:b]\ntype = file\npath = {tmp}/s*e/*/*/x.log\n"  # adir does not match s*e
     "[input:c]\ntype = file\npath = {tmp}/*/.deeper/*/x.log\n"),
    ("max-line-bytes-128-mib", STATE + "[input:a]\ntype = stdin\n"
     "max_line_bytes = 134217728\n"),
]


@pytest.mark.parametrize("text", [case[1] for case in ACCEPTED],
                         ids=[case[0] for case in ACCEPTED])
def test_boundary_values_are_accepted(tree, text):
    config.load(str(write_case(tree, text)), environ={})
