"""state_dir and the metrics address: the daemon at start and `--check` judge them alike
(one line, exit 78), state_dir is 0700 whatever the umask, and one that another user or
group can write in is refused. The tests run as root: "another user" is `nobody`, a real
second user, for ownership and for a state_dir we cannot write."""

import os
import pwd
import socket
import stat
import subprocess
import sys
import tempfile

import pytest

from helpers import REPO, base_config, run_cli, text_events, unique, wait_for, write_config

NOBODY = pwd.getpwnam("nobody").pw_uid if "nobody" in {p.pw_name for p in pwd.getpwall()} \
    else None
needs_root = pytest.mark.skipif(os.geteuid() != 0 or NOBODY is None,
                                reason="needs root and a 'nobody' user to act as another user")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fifo_config(tmp_path, state_dir, **process):
    config = base_config(str(state_dir), **process)
    config["input:web"] = {"type": "fifo", "path": str(tmp_path / "web.fifo"),
                           "queue": unique("tr-sd")}
    return write_config(tmp_path / "c.ini", config)


def refusal(*args, **as_user):
    """(exit status, stderr lines) of `python -m tailrabbit ARGS`, as another user if
    given user= and group=."""
    result = subprocess.run([sys.executable, "-m", "tailrabbit", *args], capture_output=True,
                            timeout=20, cwd=REPO, **as_user)
    return result.returncode, result.stderr.decode().splitlines()


def both_refuse(path, line):
    """The daemon and --check: exit 78 and exactly `line` on stderr."""
    expected = (78, [f"tailrabbit: {path}: [tailrabbit] {line}"])
    assert refusal("-c", str(path)) == expected
    assert refusal("--check", "-c", str(path)) == expected


def make_state(tmp_path, mode):
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(mode)
    return state


@pytest.mark.parametrize("mode,writers", [(0o777, "others"), (0o1777, "others"),
                                          (0o770, "its group"), (0o720, "its group")])
def test_a_state_dir_others_can_write_in_is_refused(tmp_path, mode, writers):
    state = make_state(tmp_path, mode)
    both_refuse(fifo_config(tmp_path, state),
                f"state_dir: {state} is writable by {writers} (mode {mode:03o}): "
                f"they could plant links in it; chmod 700 it")
    assert stat.S_IMODE(state.stat().st_mode) == mode      # refused, not changed


def test_a_state_dir_that_is_a_regular_file_is_refused(tmp_path):
    state = tmp_path / "state"
    state.write_text("")
    both_refuse(fifo_config(tmp_path, state), f"state_dir: {state} is not a directory")


def test_a_state_dir_under_a_regular_file_is_refused(tmp_path):
    (tmp_path / "blocker").write_text("")
    state = tmp_path / "blocker" / "state"
    both_refuse(fifo_config(tmp_path, state),
                f"state_dir: cannot write to {state}: Not a directory")


@needs_root
def test_a_state_dir_owned_by_another_user_is_refused(tmp_path):
    state = make_state(tmp_path, 0o700)
    os.chown(state, NOBODY, -1)
    both_refuse(fifo_config(tmp_path, state),
                f"state_dir: {state} belongs to user nobody (uid {NOBODY}), not to user "
                f"root (uid 0) who runs tailrabbit: its owner could plant links in it; "
                f"chown it")


def immutable(path):
    subprocess.run(["chattr", "+i", str(path)], check=True)


def mutable(path):
    subprocess.run(["chattr", "-i", str(path)], check=True)


@needs_root
def test_a_state_dir_nobody_can_write_is_refused_by_both(tmp_path):
    """Root writes through every mode; an immutable directory (chattr +i) it cannot."""
    state = make_state(tmp_path, 0o700)
    parent = make_state(tmp_path / "state", 0o700)          # state/state: a parent
    immutable(state)
    try:
        both_refuse(fifo_config(tmp_path, state),
                    f"state_dir: cannot write to {state}: Operation not permitted")
        missing = state / "deeper" / "state"
        both_refuse(fifo_config(tmp_path, missing),
                    f"state_dir: cannot write to {missing}: Operation not permitted")
        assert os.listdir(state) == [parent.name]           # --check left nothing
    finally:
        mutable(state)


def nobody_can_run_python():
    try:
        return subprocess.run([sys.executable, "-c", "pass"], user=NOBODY,
                              capture_output=True).returncode == 0
    except PermissionError:
        return False


@needs_root
def test_a_state_dir_we_cannot_write_as_another_user_is_refused_by_both(tmp_path):
    """Run as nobody (config in a world-readable directory), state_dir owned by root."""
    if not nobody_can_run_python():
        pytest.skip(f"user nobody cannot run {sys.executable} (a parent is not "
                    f"world-readable); the chattr test covers an unwritable state_dir")
    top = tempfile.mkdtemp(prefix="tr-nobody-")
    try:
        os.chmod(top, 0o755)
        state = os.path.join(top, "state")
        os.mkdir(state, 0o755)
        config = base_config(state)
        config["input:web"] = {"type": "stdin"}
        path = write_config(os.path.join(top, "c.ini"), config)
        os.chmod(path, 0o644)
        expected = (78, [f"tailrabbit: {path}: [tailrabbit] state_dir: cannot write to "
                         f"{state}: Permission denied"])
        as_nobody = {"user": NOBODY, "group": NOBODY}
        assert refusal("-c", str(path), **as_nobody) == expected
        assert refusal("--check", "-c", str(path), **as_nobody) == expected
    finally:
        subprocess.run(["rm", "-rf", top], check=True)


def test_check_changes_nothing_and_reports_what_start_will_do(tmp_path):
    missing = tmp_path / "new" / "state"
    result = run_cli("--check", "-c", str(fifo_config(tmp_path, missing)), timeout=20)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"state_dir {missing} (does not exist yet: will be created, mode 700)" \
        in result.stdout.decode()
    assert not (tmp_path / "new").exists()
    state = make_state(tmp_path, 0o755)
    result = run_cli("--check", "-c", str(fifo_config(tmp_path, state)), timeout=20)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"state_dir {state} (writable; mode 755, made 700 at start)" \
        in result.stdout.decode()
    assert stat.S_IMODE(state.stat().st_mode) == 0o755
    assert os.listdir(state) == []                          # the probe is gone


def start_with_umask(path, log_path, umask):
    log = open(log_path, "wb")
    process = subprocess.Popen([sys.executable, "-m", "tailrabbit", "-c", str(path)],
                               stdout=log, stderr=log, cwd=REPO, umask=umask)
    log.close()
    return process


def read(path):
    with open(path, "rb") as handle:
        return handle.read().decode()


def modes_under(top):
    """path relative to top -> mode, for top and every directory below it."""
    found = {".": stat.S_IMODE(os.stat(top).st_mode)}
    for root, dirs, _files in os.walk(top):
        for name in dirs:
            full = os.path.join(root, name)
            found[os.path.relpath(full, top)] = stat.S_IMODE(os.stat(full).st_mode)
    return found


def test_state_dir_and_spool_dirs_are_0700_under_umask_0(tmp_path):
    """The broker is unreachable, so a stop spools what the FIFO gave: the spool
    directories are created then."""
    state = tmp_path / "a" / "state"
    config = base_config(str(state), broker=f"127.0.0.1:{free_port()}", shutdown_timeout=0.5)
    fifo = tmp_path / "web.fifo"
    config["input:web"] = {"type": "fifo", "path": str(fifo)}
    process = start_with_umask(write_config(tmp_path / "c.ini", config), tmp_path / "log", 0)
    try:
        wait_for(fifo.exists, message="the FIFO")
        fd = os.open(fifo, os.O_WRONLY)
        os.write(fd, b"".join(b"line %03d\n" % i for i in range(100)))
        os.close(fd)
        wait_for(lambda: "read=100" in (process.send_signal(10) or read(tmp_path / "log")),
                 message="100 lines read")
        process.terminate()
        assert process.wait(20) == 0, read(tmp_path / "log")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    modes = modes_under(state)
    assert "spool/web" in modes, (modes, read(tmp_path / "log"))
    assert modes == {name: 0o700 for name in modes}
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o777   # parents: as mkdir -p


def logged(path):
    """{event name: [messages]} of the log at `path` (helpers.LOG_FORMAT)."""
    events = {}
    for _level, event, message in text_events(read(path)):
        events.setdefault(event, []).append(message)
    return events


def test_an_existing_state_dir_of_ours_is_made_0700_with_a_warning(tmp_path):
    state = make_state(tmp_path, 0o755)
    (state / "checkpoints-old.json").write_text("{}")
    process = start_with_umask(fifo_config(tmp_path, state), tmp_path / "log", 0o022)
    try:
        wait_for(lambda: "started" in logged(tmp_path / "log"), message="start")
        process.terminate()
        assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert f"state_dir {state} was mode 755; made 700 (it holds log lines)" in logged(
        tmp_path / "log").get("state_dir_mode_fixed", []), read(tmp_path / "log")


def test_check_binds_the_metrics_address_as_the_daemon_does(tmp_path):
    state = make_state(tmp_path, 0o700)
    path = fifo_config(tmp_path, state, metrics="192.0.2.1:9999")   # not an address of ours
    both_refuse(path, "metrics: cannot listen on 192.0.2.1:9999: Cannot assign requested "
                      "address: ('192.0.2.1', 9999)")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        path = fifo_config(tmp_path, state, metrics=f"127.0.0.1:{port}")
        result = run_cli("--check", "-c", str(path), timeout=20)
        assert result.returncode == 0, result.stdout + result.stderr
        assert (f"warning: metrics 127.0.0.1:{port} is in use now (by the running "
                f"tailrabbit?): a daemon started now would exit 78") in result.stdout.decode()
    port = free_port()
    result = run_cli("--check", "-c", str(fifo_config(tmp_path, state,
                                                      metrics=f"127.0.0.1:{port}")))
    assert f"metrics 127.0.0.1:{port} (free)" in result.stdout.decode()
