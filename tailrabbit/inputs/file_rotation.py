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
        if fd is not None:
            # The unread tail, from the copy, under a checkpoint of the copy's own: a crash
            # before it is confirmed resumes there, not in the truncated file. A copy that
            # ends before what we read of the original holds nothing unread.
            size = os.fstat(fd).st_size
            # The copy goes on where we stopped reading: the event held and the line read
            # in part continue in it; its checkpoint starts at the event held (a restart
            # reads the whole event again from the copy).
            carried, start = tailer, tailer.framer.end_offset
            if size < tailer.read_pos:
                # We read past the copy's end: it holds nothing unread, and the line we
                # hold in part is known only to us (the copy has less of it, if any).
                self._take(tailer.flush())
                carried, start = None, size
            if verified:
                logevents.file_copytruncated(input=self.name, path=tailer.path, copy=name)
            else:
                skipped = count_lines(fd, start)
                self.copies.count_skipped(skipped)
                logevents.file_copy_assumed(input=self.name, path=tailer.path, copy=name,
                                            count=skipped, total=self.copies.skipped_lines)
            self._drain_copy(name, fd, start, now, carried)
        else:
            logevents.file_truncated(input=self.name, path=tailer.path)
            self._take(tailer.flush())
        self.copies.detach(tailer)           # its other copies hold only what we shipped
        tailer.restart_at(0)
        tailer.record.restart(0)
        tailer.record.identity = identify(tailer.fd)

    def _drain_copy(self, name, fd, offset, now, carried=None):
        """Read a copytruncate copy from `offset` to its end; it is never read again.
        `carried`: the tailer of the truncated file, whose reading goes on in the copy."""
        copy_record = self.store.add(identify(fd), name, offset)
        self.copies.forget(name)             # from now on an ordinary file at its end
        copy = FileTailer(self._new_framer, name, fd, copy_record, offset)
        if carried is not None:
            carried.hand_over(copy)
        self._take(copy.read(now))
        self._finish(copy)

    def _recover_rotated(self, now):
        """Files rotated while we were down, or left behind by a link switched to another
        file (files/rotated.py, open_away): read them from their checkpoint first."""
        for record in list(self.store.records.values()):
            # A record of a file that was empty has no fingerprint: any file reusing its
            # inode would pass for it, so it cannot be looked for.
            if still_at(record, self.matches.open) or not record.identity.length:
                continue
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
                # A copy read to its end is looked for too: it gets a checkpoint at its
                # end, so a glob that matches it does not ship it again.
                self.store.forget(record)         # its inode holds other content now
                self._drain_copy(name, fd, record.offset, now)
            logevents.file_rotated_while_stopped(input=self.name, path=record.path,
                                                 rotated=name, offset=record.offset)
