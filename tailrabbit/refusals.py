"""Cross-key checks of a parsed config: what each input's settings are fine alone but
can never work together, or with the files that exist now. Each raises one ConfigError
(exit 78 at load, the same line from `--check`, and a SIGHUP reload keeps the running
config). config.py parses; this module judges.

Why at load rather than when an input runs: an input that waits forever ("does not exist
yet; waiting" for a path that is a directory, an ERROR every 5 s for a FIFO path that is a
regular file) looks alive to a supervisor, and nobody reads its log until lines are
missing. What can change while we run (a FIFO replaced later, a symlink planted under a
glob's reach) is still handled by the inputs themselves.
"""

import fnmatch
import glob
import os
import stat

from tailrabbit.ini import ConfigError

NAME_MAX_BYTES = 100
NAME_PUNCTUATION = "._-"
STATE_FILES = "(it names files in state_dir)"


def input_name_problem(name):
    """None, or why `name` cannot name an input. Names become file names in state_dir
    (`checkpoints-<name>.json`, `spool/<name>/`): `/` and `..` would escape it (a
    checkpoint written outside state_dir), a leading `.` hides it (and `.`/`..` are
    directories), and a name near NAME_MAX (255 bytes) leaves no room for the suffixes,
    so every save fails. 100 bytes leaves room for any suffix we add."""
    for char in name:
        if not (char.isalnum() or char in NAME_PUNCTUATION):
            return (f"the input name holds {char!r}: only letters, digits, '.', '_' and "
                    f"'-' {STATE_FILES}")
    if name.startswith("."):
        return f"the input name must not start with '.' {STATE_FILES}"
    size = len(name.encode("utf-8"))
    if size > NAME_MAX_BYTES:
        return f"the input name is {size} bytes; at most {NAME_MAX_BYTES} {STATE_FILES}"
    return None


def check_inputs(path, process, inputs):
    """Every cross-input and file-system check, in the order a reader fixes them."""
    _check_routes(path, inputs)
    _check_buffer_bytes(path, process, inputs)
    _check_readers(path, inputs)
    for item in inputs:
        if item.type == "fifo":
            _check_fifo_path(path, item)
        elif item.type == "file":
            _check_file_path(path, item)
            _check_state_dir_reach(path, process.state_dir, item)


def _error(path, item, key, problem):
    return ConfigError(path, f"input:{item.name}", key, problem)


def _check_routes(path, inputs):
    """Two inputs of one queue must declare it alike, or the broker refuses the second."""
    seen = {}
    for item in inputs:
        flags = (item.durable, item.auto_delete, item.arguments)
        other = seen.setdefault(item.queue, (item.name, flags))
        if other[1] != flags:
            raise _error(path, item, "queue",
                         f"queue {item.queue!r} is also used by input {other[0]!r} "
                         f"with other durable/auto_delete/arguments")


def _check_buffer_bytes(path, process, inputs):
    """A buffer_bytes below an input's max_line_bytes is refused: one line could be larger
    than the whole buffer, which then holds a line at a time. It is most likely a line
    count written under the byte key (`buffer_bytes = 100000`); refusing it beats a
    shipper that silently crawls or spools everything at the first burst. Any value at
    or above every max_line_bytes works (the bound is passed by at most one batch)."""
    for item in inputs:
        if process.buffer_bytes < item.max_line_bytes:
            raise ConfigError(path, "tailrabbit", "buffer_bytes",
                              f"must be at least max_line_bytes of input {item.name} "
                              f"({item.max_line_bytes}), got {process.buffer_bytes}: "
                              f"it counts bytes (buffer counts lines)")


def _check_readers(path, inputs):
    """A pipe has one stream of bytes: two readers split it at random (each line goes to
    whichever read first), so stdin, and a FIFO's path, belong to one input. Two file
    inputs on one path are allowed: each reads the whole file with its own checkpoint
    (a fan-out to two queues)."""
    stdin_inputs = [item for item in inputs if item.type == "stdin"]
    if len(stdin_inputs) > 1:
        raise _error(path, stdin_inputs[1], "type", "only one input can read stdin")
    fifo_paths = {os.path.realpath(item.path) for item in inputs if item.type == "fifo"}
    readers = {}
    for item in inputs:
        if item.type == "stdin" or glob.has_magic(item.path):
            continue
        real = os.path.realpath(item.path)
        first = readers.setdefault(real, item)
        if first is not item and real in fifo_paths:
            raise _error(path, item, "path",
                         f"{item.path} is also read by input {first.name} (a FIFO's lines "
                         f"would split between them at random)")


def _check_fifo_path(path, item):
    """A FIFO input creates its path if missing; an existing non-FIFO is never opened."""
    try:
        mode = os.stat(item.path).st_mode
    except OSError:
        return                           # missing: created at start; others: at run time
    if not stat.S_ISFIFO(mode):
        raise _error(path, item, "path", f"{item.path} exists and is not a FIFO")


def _check_file_path(path, item):
    if not glob.has_magic(item.path) and os.path.isdir(item.path):
        raise _error(path, item, "path",
                     f"{item.path} is a directory; name a file, or a glob such as "
                     f"{os.path.join(item.path, '*.log')}")


def _check_state_dir_reach(path, state_dir, item):
    """A file input must not ship our own checkpoints and spools: shipping them changes
    them, so they are shipped again, in a loop. Judged on real paths: the glob's fixed
    directory (the components before the first wildcard) inside state_dir, or state_dir
    inside it at a depth the pattern's components can match. A symlink met inside the
    pattern's reach cannot be seen here; the file input refuses those matches at run
    time."""
    if _can_reach(item.path, os.path.realpath(state_dir)):
        raise _error(path, item, "path",
                     f"{item.path} can match files under state_dir {state_dir} "
                     f"(tailrabbit's own files)")


def _can_reach(pattern, real_state_dir):
    parts = pattern.split(os.sep)
    fixed = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
    base = os.path.realpath(os.sep.join(parts[:fixed]) or os.sep)
    rest = parts[fixed:]
    if _inside(base, real_state_dir):
        return True
    if not _inside(real_state_dir, base):
        return False
    between = os.path.relpath(real_state_dir, base).split(os.sep)
    # A match has exactly len(rest) more components (glob does not recurse); it is under
    # state_dir if the pattern's first components can name state_dir and one remains.
    return len(between) < len(rest) and all(
        _component_matches(name, part) for name, part in zip(between, rest))


def _inside(path, directory):
    return os.path.commonpath([path, directory]) == directory


def _component_matches(name, part):
    """glob's rule: a wildcard does not match a leading '.' (hidden names)."""
    if name.startswith(".") and not part.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, part)
