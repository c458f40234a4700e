"""The process's exit statuses, in one leaf module (it imports nothing).

They are part of the contract (CONTRACT.md): supervisord's `exitcodes` and systemd's
`RestartPreventExitStatus=` are written against them, so each has a name and is never
written as a bare number. The numbers are BSD sysexits(3) where one fits; 1 is the
conventional "anything else". Rejected: keeping them in cli.py, where check.py and the
daemon had to import the command line to exit (check.py <-> cli.py was a cycle) and the
daemon wrote `Halt(0)` / `Halt(1)` instead.
"""

OK = 0             # a clean stop (SIGTERM, stdin at EOF), or --check: the broker let us in
FAILURE = 1        # an unexpected failure: the supervisor should restart us
UNAVAILABLE = 69   # EX_UNAVAILABLE: --check with a valid config, but no broker answered
CONFIG = 78        # EX_CONFIG: a bad config or bad arguments, one line on stderr
