"""state_dir and the metrics address: judged the same way by the daemon at start and by
`--check`, so `--check` cannot say 0 for a config the daemon then refuses with 78.

state_dir holds checkpoints and spools: raw log lines (tokens in query strings, API
payloads) and the positions that decide what is shipped. So it is 0700 whatever the umask
(created so, or tightened at start when it is ours), and it is refused when anyone else
can write in it or owns it: whoever can create names there can plant a symlink at a name
we are about to write (overwriting any file we can write), or replace a checkpoint to make
us skip or re-ship files. That includes the group (`g+w`), as sshd's StrictModes does for
a home directory: the shipped unit runs with group `adm`, and every member of a group
that can write there could do the same. A sticky bit does not help: it stops renames
and deletes of our names, not the planting of new ones. Its parents are not judged.

`--check` changes nothing (run as root, creating the state_dir would leave it root-owned
and unwritable for the service user): a missing state_dir is judged by making and removing
a directory in its nearest existing parent. Every other rule, and the write probe, are
the daemon's.

The metrics address is bound by the same gevent server code the daemon uses, then
closed. One difference: an address in use is a warning from `--check`, not a refusal,
since the usual holder is the running tailrabbit whose config is being checked (the
daemon itself refuses it at start, 78).
"""

import errno
import os
import pwd
import stat

from tailrabbit import logevents
from tailrabbit.control import StartupError

DIRECTORY_MODE = 0o700
PROBE_NAME = ".write-test"
PROBE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def prepare_state_dir(settings):
    """The daemon at start: create state_dir 0700 (or tighten it to 0700 when it is
    ours), refuse one that others can write in, probe a write. Raises StartupError."""
    path = settings.process.state_dir
    where = _where(settings)
    created = False
    try:
        try:
            info = os.stat(path)
        except FileNotFoundError:
            os.makedirs(path, DIRECTORY_MODE)      # the umask may strip bits: chmod below
            created = True
            info = os.stat(path)
    except OSError as error:
        raise _cannot_write(where, path, error) from None
    _judge(where, path, info)
    mode = stat.S_IMODE(info.st_mode)
    if mode != DIRECTORY_MODE:
        try:
            os.chmod(path, DIRECTORY_MODE)
        except OSError as error:
            raise _cannot_write(where, path, error) from None
        if not created:
            logevents.state_dir_mode_fixed(path=path, mode=f"{mode:03o}",
                                           new_mode=f"{DIRECTORY_MODE:03o}")
    _probe(where, path)


def check_state_dir(settings):
    """`--check`: the daemon's rules, changing nothing. Returns what to print; raises
    StartupError with the line the daemon would print."""
    path = settings.process.state_dir
    where = _where(settings)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return _check_missing(where, path)
    except OSError as error:
        raise _cannot_write(where, path, error) from None
    _judge(where, path, info)
    _probe(where, path)
    mode = stat.S_IMODE(info.st_mode)
    if mode != DIRECTORY_MODE:
        return f"{path} (writable; mode {mode:03o}, made {DIRECTORY_MODE:03o} at start)"
    return f"{path} (writable)"


def _check_missing(where, path):
    """As makedirs would: a directory made and removed at once in the nearest existing
    parent shows the error the daemon would meet (the same errno, so the same line)."""
    parent = os.path.dirname(path)
    while not os.path.lexists(parent):
        parent = os.path.dirname(parent)
    trial = os.path.join(parent, f".tailrabbit-check-{os.getpid()}")
    try:
        os.mkdir(trial, DIRECTORY_MODE)
        os.rmdir(trial)
    except OSError as error:
        raise _cannot_write(where, path, error) from None
    return f"{path} (does not exist yet: will be created, mode {DIRECTORY_MODE:03o})"


def _where(settings):
    return f"{settings.path}: [tailrabbit] state_dir"


def _cannot_write(where, path, error):
    return StartupError(f"{where}: cannot write to {path}: {error.strerror}")


def _judge(where, path, info):
    if not stat.S_ISDIR(info.st_mode):
        raise StartupError(f"{where}: {path} is not a directory")
    me = os.geteuid()
    if info.st_uid not in (me, 0):
        raise StartupError(f"{where}: {path} belongs to {_user(info.st_uid)}, not to "
                           f"{_user(me)} who runs tailrabbit: its owner could plant links "
                           f"in it; chown it")
    mode = stat.S_IMODE(info.st_mode)
    writers = "others" if mode & stat.S_IWOTH else "its group" if mode & stat.S_IWGRP else None
    if writers:
        raise StartupError(f"{where}: {path} is writable by {writers} (mode {mode:03o}): "
                           f"they could plant links in it; chmod 700 it")


def _user(uid):
    try:
        return f"user {pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _probe(where, path):
    """A file created and removed: a read-only file system or an ACL shows here, not at
    the first checkpoint save. O_EXCL|O_NOFOLLOW: a planted link is never followed."""
    probe = os.path.join(path, PROBE_NAME)
    try:
        try:
            os.unlink(probe)                   # a leftover of a killed start
        except FileNotFoundError:
            pass
        os.close(os.open(probe, PROBE_FLAGS, 0o600))
        os.unlink(probe)
    except OSError as error:
        raise _cannot_write(where, path, error) from None


def check_metrics(settings):
    """`--check`: bind the metrics address as the daemon's server does, then close it.
    Returns the line to print (None without metrics); raises StartupError with the daemon's
    line, except for an address in use (see the module docstring)."""
    if not settings.process.metrics:
        return None
    from gevent.pywsgi import WSGIServer
    host, port = settings.process.metrics
    server = WSGIServer((host, port), None, log=None)
    try:
        server.init_socket()
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            return (f"warning: metrics {host}:{port} is in use now (by the running "
                    f"tailrabbit?): a daemon started now would exit 78")
        raise StartupError(metrics_problem(settings, error)) from None
    finally:
        server.close()
    return f"metrics {host}:{port} (free)"


def metrics_problem(settings, error):
    """The daemon's line for a metrics address it cannot listen on."""
    host, port = settings.process.metrics
    return (f"{settings.path}: [tailrabbit] metrics: cannot listen on {host}:{port}: "
            f"{error.strerror}")
