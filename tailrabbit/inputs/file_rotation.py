"""What a file input does across rotation: the files rotated away from a path read before
its new file, a truncation (copytruncate: the unread tail from the copy), and at start the
files rotated while tailrabbit was stopped, or left behind by a link switched meanwhile.
A mixin of FileInput (logfile.py), which holds the state it works on: `_tailers` (path ->
tailer of the file there now), `_draining` (tailers of files rotated away, oldest first),
`store`, `copies`, `_paths`.
"""

import os

from tailrabbit import logevents
from tailrabbit.files.copies import count_lines, find_copy
from tailrabbit.files.identity import identify
from tailrabbit.files.rotated import open_away, still_at
from tailrabbit.files.tailer import FileTailer


class FileRotation:
    def _older_first(self, tailer, now):
        """`tailer`'s file grew: the writer moved on to it. The files rotated away from its
        path before it are read to their end first, and the multiline event each holds is
        complete and goes out before the new lines. False while one of them ends in a
        line without its "\n": that line is complete only once its file stopped growing
        for rotate_wait (a writer still holding it may finish it), and goes before the
        new file's lines, so those wait until then (shipping it now could tear it)."""
        for old in list(self._draining):
            if old is tailer:
                break
            if old.path == tailer.path and old.fd is not None:
                self._take(old.read(now))
                if not old.holds_part_of_a_line:
                    self._take(old.end_event())
                elif now - old.last_growth < self.settings.rotate_wait:
                    return False
                else:
                    self._retire(old)         # quiet long enough: its last line is whole
        return True

    def _truncated(self, tailer, now):
        """copytruncate (the tail is in the copy) or truncation in place: restart at 0."""
        reading = {t.inode for t in list(self._tailers.values()) + self._draining
                   if t.fd is not None}
        name, fd, verified = find_copy(tailer, self.copies, reading, set(self.store.records),
                                       self._paths)
        if fd is None:
            logevents.file_truncated(input=self.name, path=tailer.path)
            self._take(tailer.flush())
            self._restart(tailer)
            return
        # The copy goes on where we stopped reading: the event held and the line read in
        # part continue in it (a restart reads the whole event again from the copy).
        start, size = tailer.framer.end_offset, os.fstat(fd).st_size
        whole = size >= tailer.read_pos
        if not whole:
            # We read past the copy's end: it holds nothing unread, and the line we hold
            # in part is known only to us (the copy has less of it, if any).
            self._take(tailer.flush())
            start = size
        if verified:
            logevents.file_copytruncated(input=self.name, path=tailer.path, copy=name)
        else:
            skipped = count_lines(fd, start)
            self.copies.count_skipped(skipped)
            logevents.file_copy_assumed(input=self.name, path=tailer.path, copy=name,
                                        count=skipped, total=self.copies.skipped_lines)
        if not whole:
            # The lines read and not confirmed are in no file now (a stop spools them:
            # their generation is gone); the copy gets a checkpoint at its end, so a glob
            # that matches it does not ship it again.
            self._restart(tailer)
            self._drain_copy(name, fd, start, now, self.store.add(identify(fd), name, start))
            return
        # The file's checkpoint goes on in the copy (the same bytes at the same offsets),
        # and the truncated file gets a new one, before the copy is read: a stop in the
        # middle of it leaves the copy's unread rest where the next start looks (below).
        record = tailer.record
        self._move_to_copy(record, fd)
        tailer.record = self.store.add(identify(tailer.fd), tailer.path, 0)
        tailer.record.follow(record.path, record.resolved)
        self._drain_copy(name, fd, start, now, record, carried=tailer)
        self.copies.detach(tailer)           # its other copies hold only what we shipped
        tailer.restart_at(0)

    def _restart(self, tailer):
        """The file at the tailer's path is read again from 0 under its record."""
        self.copies.detach(tailer)           # its other copies hold only what we shipped
        tailer.restart_at(0)
        tailer.record.restart(0)
        tailer.record.identity = identify(tailer.fd)

    def _move_to_copy(self, record, fd):
        """`record` (a file's checkpoint) goes on in the file's copytruncate copy at `fd`:
        the same offsets, the same generation, so the lines read from the file and not
        confirmed yet move it when they are; its path stays the file's. A stop before the
        copy is read to its end leaves the copy's rest where the next start finds it: the
        file of a record whose path names another file is looked for by identity among
        the path's rotated names (files/rotated.py), as a file renamed away, and read from
        the checkpoint, before the new file; a stop with the broker down leaves its lines
        to that (not_readable_again). Rejected: a checkpoint of the copy's own under the
        copy's name (the design before): a pattern that does not match the copy
        (api.log.1 beside an exact path) never read its rest again, and the file's record,
        also leading to the copy, read it from the file's older checkpoint."""
        self.store.forget(record)
        record.identity = identify(fd)
        self.store.records[record.identity.inode] = record
        self.store.dirty = True

    def _drain_copy(self, name, fd, offset, now, record, carried=None):
        """Read a copytruncate copy from `offset` to its end, under `record`; it is never
        read again. `carried`: the tailer of the truncated file, whose reading goes on in
        the copy. The copy is closed even if the reader is stopped in the middle."""
        self.copies.forget(name)             # from now on an ordinary file at its end
        copy = FileTailer(self._new_framer, name, fd, record, offset)
        if carried is not None:
            carried.hand_over(copy)
        try:
            self._take(copy.read(now))
            self._take(copy.flush())
        finally:
            copy.close()

    def _recover_rotated(self, now):
        """Files rotated while we were down, or left behind by a link switched to another
        file (files/rotated.py, open_away): read them from their checkpoint first."""
        for record in list(self.store.records.values()):
            # A record of a file that was empty has no fingerprint: any file reusing its
            # inode would pass for it, so it cannot be looked for.
            if (self.store.records.get(record.identity.inode) is not record
                    or still_at(record, self.matches.open) or not record.identity.length):
                continue                          # (or replaced by a copy's, below)
            name, fd, same_inode = open_away(record, self.matches.open)
            if fd is None:
                continue
            if same_inode:                        # renamed, or a link's old target
                # Under the path it was followed at, like a file rotated while we run: its
                # event held ends when the writer's new file there grows (_read_current),
                # and the new file's lines wait for its unread rest (_older_first).
                tailer = FileTailer(self._new_framer, record.path, fd, record, record.offset)
                tailer.last_growth = now
                self._draining.append(tailer)
            else:
                # Copied and truncated: the record goes on in the copy (_move_to_copy), so
                # a stop while it is read leaves its rest to the next start. A copy read
                # to its end is looked for too: its checkpoint is then at its end, so a
                # glob that matches it does not ship it again.
                self._move_to_copy(record, fd)
                self._drain_copy(name, fd, record.offset, now, record)
            logevents.file_rotated_while_stopped(input=self.name, path=record.path,
                                                 rotated=name, offset=record.offset)
