"""Signals that arrive before the daemon's handlers exist are kept, not fatal.

Between the process start and `Daemon.start` (imports, config load, a password file that
is slow to read) SIGHUP, SIGUSR1, SIGUSR2, SIGTERM and SIGINT would take their default
action: SIGHUP and SIGUSR1/2 kill the process. `install()` runs first thing in `cli.main` and only
records them; the daemon replays them into its control loop once it runs (a SIGTERM then
stops it cleanly, a SIGHUP reloads). Python runs these handlers between bytecodes in the
main thread, so a list is enough.
"""

import os
import signal

NAMES = {signal.SIGTERM: "TERM", signal.SIGINT: "INT", signal.SIGHUP: "HUP",
         signal.SIGUSR1: "USR1", signal.SIGUSR2: "USR2"}

_received = []


def _record(signum, frame):
    _received.append(NAMES[signum])


def install():
    for signum in NAMES:
        signal.signal(signum, _record)


def take():
    """The names of the signals recorded so far, oldest first; forgets them."""
    names = list(_received)
    del _received[:len(names)]
    return names


def uninstall():
    """Default actions again; a signal recorded meanwhile is sent again to take effect."""
    for signum in NAMES:
        signal.signal(signum, signal.SIG_DFL)
    for name in take():
        os.kill(os.getpid(), getattr(signal, f"SIG{name}"))
