"""file end to end: start_at, appends, offsets, a path that appears later."""

import os

from helpers import wait_for


def file_config(config, queue, path, **extra):
    config["input:api"] = {"type": "file", "path": path, "queue": queue, **extra}
    return config


def append(path, data):
    with open(path, "ab") as handle:
        handle.write(data)


def test_start_at_end_ships_only_new_lines_with_offsets(broker, config, queue_name,
                                                        tailrabbit_factory, tmp_path):
    path = str(tmp_path / "api.log")
    append(path, b"old line 1\nold line 2\n")
    old_size = os.path.getsize(path)
    proc = tailrabbit_factory(file_config(config, queue_name, path))
    proc.wait_for_event("connected")
    # start_at = end: lines appended before the input first looked at the file would be
    # taken for old ones; its first poll is recorded in its checkpoints file
    state = os.path.join(config["tailrabbit"]["state_dir"], "checkpoints-api.json")
    wait_for(lambda: os.path.exists(state), message="the input's first poll")
    append(path, b"new 1\n\nnew 2\npartial")
    broker.wait_depth(queue_name, 2)
    append(path, b" line\n")
    broker.wait_depth(queue_name, 3)
    assert proc.stop() == 0, proc.log()
    messages = broker.consume_all(queue_name)
    assert [m.body for m in messages] == [b"new 1", b"new 2", b"partial line"]
    headers = [m.properties["application_headers"] for m in messages]
    assert [h["offset"] for h in headers] == [old_size, old_size + 7, old_size + 13]
    assert all(h["path"] == path and h["input"] == "api" for h in headers)


def test_start_at_beginning_and_a_file_that_appears_later(broker, config, queue_name,
                                                          tailrabbit_factory, tmp_path):
    present = str(tmp_path / "present.log")
    later = str(tmp_path / "later.log")
    append(present, b"a\nb\n")
    config = file_config(config, queue_name, present, start_at="beginning")
    config["input:later"] = {"type": "file", "path": later, "queue": queue_name + "-later"}
    broker.queues.append(queue_name + "-later")
    proc = tailrabbit_factory(config)
    broker.wait_depth(queue_name, 2)
    proc.wait_for_event("file_missing", containing=f" {later} ")
    append(later, b"first\nsecond\n")
    broker.wait_depth(queue_name + "-later", 2)
    assert proc.stop() == 0, proc.log()
    assert [m.body for m in broker.consume_all(queue_name)] == [b"a", b"b"]
    assert [m.body for m in broker.consume_all(queue_name + "-later")] == [b"first",
                                                                            b"second"]


def test_long_lines_are_truncated_flagged_and_counted(broker, config, queue_name,
                                                      tailrabbit_factory, tmp_path):
    path = str(tmp_path / "long.log")
    append(path, b"short\n" + b"y" * 5000 + b"\nafter\n")
    proc = tailrabbit_factory(file_config(config, queue_name, path, start_at="beginning",
                                          max_line_bytes=1000))
    broker.wait_depth(queue_name, 3)
    proc.signal(__import__("signal").SIGUSR1)
    proc.wait_for_event("stats", containing=" truncated=1 ")
    assert proc.stop() == 0
    messages = broker.consume_all(queue_name)
    assert [m.body for m in messages] == [b"short", b"y" * 1000, b"after"]
    headers = [m.properties["application_headers"] for m in messages]
    assert "truncated" not in headers[0] and headers[1]["truncated"] is True
    assert [h["offset"] for h in headers] == [0, 6, 5007]
    assert proc.logged("line_truncated"), proc.log()


def test_many_idle_files_use_no_cpu(broker, config, queue_name, tailrabbit_factory, tmp_path):
    import time
    directory = tmp_path / "many"
    directory.mkdir()
    for i in range(100):
        (directory / f"f{i:03d}.log").write_bytes(b"x\n")
    proc = tailrabbit_factory(file_config(config, queue_name, str(directory / "*.log"),
                                          start_at="beginning"))
    broker.wait_depth(queue_name, 100)
    time.sleep(1)                                   # let start-up work finish
    before = proc.cpu_seconds()
    time.sleep(5)                                   # the measurement window itself
    used = proc.cpu_seconds() - before
    assert used < 0.25, f"{used:.3f} CPU seconds in 5 s with 100 idle files"
    print(f"100 idle files: {used:.3f} CPU s in 5 s")
    assert proc.stop() == 0
