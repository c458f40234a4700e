"""Which paths a file input may open, and opening them without following a planted link.

The operator writes the pattern (`/var/log/api/*.log`), but its matches are whatever anyone
who can write in the directory puts there. So, like Filebeat's `symlinks: false`, a match
that is a symbolic link is not read unless the input says `follow_symlinks = True`:
otherwise `evil.log -> /var/log/auth.log` is shipped with our rights (the shipped unit runs
with group `adm`). The same holds for a directory a glob component matched
(`logs/*/app.log` and a planted `logs/evil -> /etc`). What the operator wrote literally
is trusted: the directories before the first glob component, and a path named exactly,
may be links. Each refused link gets one WARNING naming it and its target.

The check and the open must agree: a regular file swapped for a link between the stat and
the open must make the open fail, not follow. So an open walks the untrusted components
with openat(O_NOFOLLOW) (O_NOFOLLOW alone guards only the last one). Rotated-copy lookups
(`app.log.1`, ...) and re-opens go through the same `open`, an exact path's rotated names
included: only the exact path itself was chosen. Opens are O_NONBLOCK and keep only
regular files: a FIFO swapped in after the stat would block the whole process in open().
Rejected: realpath() of the match must stay in its directory -- it allows a link to a
sibling but still races with the open, and says nothing about the link's own directory.

Also never opened: compressed glob matches (`app.log.2.gz` under `app.log*`: not lines)
and matches under state_dir (our own checkpoints and spools: shipping them would feed back
into themselves), each with one WARNING per reason.
"""

import errno
import glob
import os
import stat

from tailrabbit import logevents
from tailrabbit.files.rotated import is_compressed


MAX_REMEMBERED = 100000      # paths remembered as allowed, or warned about as links
READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK
DIR_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECTORY


def literal_base(pattern):
    """The directory the operator named literally: components before the first glob one
    (an exact path's directory)."""
    parts = pattern.split(os.sep)
    for index, part in enumerate(parts[:-1]):
        if glob.has_magic(part):
            return os.sep.join(parts[:index]) or os.sep
    return os.path.dirname(pattern) or os.sep


class MatchPolicy:
    """Per file input: scan the pattern's matches, and open them, as the rules above say."""

    def __init__(self, name, pattern, state_dir, follow_symlinks=False):
        self.name = name
        self.pattern = pattern
        self.is_glob = glob.has_magic(pattern)
        self.state_dir = os.path.realpath(state_dir)
        self.follow = follow_symlinks
        self.base = literal_base(pattern)
        self._allowed = {}           # path -> inode of matches that may be read
        self._warned = set()         # reasons for refusing a match, warned once each
        self._warned_links = set()   # links refused, warned once each

    # ---- scanning --------------------------------------------------------------------

    def scan(self):
        """path -> (dev, ino) of every regular file the pattern names now that may be read."""
        paths = sorted(glob.glob(self.pattern)) if self.is_glob else [self.pattern]
        found = {}
        for path in paths:
            try:
                st = os.stat(path)
                inode = (st.st_dev, st.st_ino)
                # state_dir first: a link into it is refused for that reason, which says more
                if (stat.S_ISREG(st.st_mode) and not self._refuse(path, inode)
                        and not self._planted_link(path)):
                    found[path] = inode
            except OSError:
                continue
        return found

    def _trusted(self, path):
        return self.follow or (not self.is_glob and path == self.pattern)

    def _untrusted_parts(self, path):
        """(directory to start from, components to walk without following links)."""
        prefix = self.base.rstrip(os.sep) + os.sep
        if path.startswith(prefix) and len(path) > len(prefix):
            return self.base, path[len(prefix):].split(os.sep)
        return os.path.dirname(path) or os.sep, [os.path.basename(path)]

    def _planted_link(self, path):
        """True (and one WARNING per path) if `path` is, or lies under, a link we may not
        follow."""
        if self._trusted(path):
            return False
        base, parts = self._untrusted_parts(path)
        current = base
        for part in parts:
            current = os.path.join(current, part)
            if stat.S_ISLNK(os.lstat(current).st_mode):
                self._warn_link(path, current)
                return True
        return False

    def _warn_link(self, path, link):
        if path in self._warned_links:
            return
        if len(self._warned_links) > MAX_REMEMBERED:
            self._warned_links.clear()
        self._warned_links.add(path)
        try:
            target = os.readlink(link)
        except OSError:
            target = "?"
        logevents.file_symlink_skipped(input=self.name, path=path, pattern=self.pattern,
                                       link=link, target=target)

    def _refuse(self, path, inode):
        """Compressed glob matches and files under state_dir are never opened; one WARNING
        per input and reason (a rotation makes a new .gz name every time)."""
        if self._allowed.get(path) == inode:
            return False
        if self.is_glob and is_compressed(path):
            reason = "compressed (a rotated copy: its lines were shipped as text)"
        elif os.path.commonpath([os.path.realpath(path), self.state_dir]) == self.state_dir:
            reason = f"under state_dir {self.state_dir} (tailrabbit's own files)"
        else:
            if len(self._allowed) > MAX_REMEMBERED:
                self._allowed.clear()
            self._allowed[path] = inode
            return False
        if reason not in self._warned:
            self._warned.add(reason)
            logevents.file_match_refused(input=self.name, path=path, pattern=self.pattern,
                                         reason=reason)
        return True

    # ---- opening ---------------------------------------------------------------------

    def resolved(self, path, fd):
        """The link-free name of the file `fd` opened at `path` when `path` leads through a
        symbolic link (an exact path may be one; a glob match with follow_symlinks), else
        None. Saved in its checkpoint: when the link is switched to another file while we
        are stopped, the old one is found there again (files/rotated.py). None too if the
        name does not hold `fd`'s file (the link switched since the open): no name is
        better than the new target's."""
        real = os.path.realpath(path)
        if real == path:
            return None
        try:
            st, opened = os.stat(real), os.fstat(fd)
        except OSError:
            return None
        return real if (st.st_dev, st.st_ino) == (opened.st_dev, opened.st_ino) else None

    def open(self, path):
        """A read-only descriptor of the regular file `path`, opened through no link we
        may not follow; raises OSError (ELOOP or ENOTDIR for such a link)."""
        if self._trusted(path):
            fd = os.open(path, READ_FLAGS)
        else:
            base, parts = self._untrusted_parts(path)
            dir_fd = os.open(base, DIR_FLAGS)
            try:
                for part in parts[:-1]:
                    next_fd = os.open(part, DIR_FLAGS | os.O_NOFOLLOW, dir_fd=dir_fd)
                    os.close(dir_fd)
                    dir_fd = next_fd
                fd = os.open(parts[-1], READ_FLAGS | os.O_NOFOLLOW, dir_fd=dir_fd)
            finally:
                os.close(dir_fd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(errno.EINVAL, "not a regular file", path)
        return fd
