"""The input kinds, one module each, behind one small interface (inputs.base.Input)."""

from tailrabbit.inputs.fifo import FifoInput
from tailrabbit.inputs.logfile import FileInput
from tailrabbit.inputs.stdin import StdinInput


def make_input(settings, buffer, stats, state_dir, spool=None, watcher=None):
    if settings.type == "stdin":
        return StdinInput(settings, buffer, stats, spool)
    if settings.type == "fifo":
        return FifoInput(settings, buffer, stats, spool)
    return FileInput(settings, buffer, stats, state_dir, watcher=watcher, spool=spool)
