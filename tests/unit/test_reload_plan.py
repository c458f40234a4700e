"""The reload plan is pure: which inputs a new config adds, removes, retunes (applied in
place) and restarts (how they read changed)."""

from tailrabbit import config
from tailrabbit.reload import plan


def inputs(tmp_path, text):
    path = tmp_path / "c.ini"
    path.write_text("[tailrabbit]\nstate_dir = %s\n" % (tmp_path / "state") + text)
    return config.load(str(path), environ={}).inputs


BASE = ("[input:web]\ntype = fifo\npath = /tmp/web.fifo\n"
        "[input:api]\ntype = file\npath = /tmp/api.log\n"
        "[input:old]\ntype = stdin\n")


def test_an_unchanged_config_plans_nothing(tmp_path):
    steps = plan(inputs(tmp_path, BASE), inputs(tmp_path, BASE))
    assert steps == ([], [], [], [])


def test_routes_retune_reading_settings_restart_names_add_and_remove(tmp_path):
    new = ("[input:web]\ntype = fifo\npath = /tmp/web.fifo\nqueue = elsewhere\n"
           "[input:api]\ntype = file\npath = /tmp/api.log\nmax_line_bytes = 4096\n"
           "[input:fresh]\ntype = stdin\n")
    steps = plan(inputs(tmp_path, BASE), inputs(tmp_path, new))
    assert steps.added == ["fresh"]
    assert steps.removed == ["old"]
    assert steps.retuned == ["web"]
    assert steps.restarted == ["api"]
    assert steps.changed == ["web", "api"]


def test_every_reading_key_restarts(tmp_path):
    old = inputs(tmp_path, "[input:f]\ntype = file\npath = /tmp/f.log\n")
    for change in ("path = /tmp/g.log", "max_line_bytes = 100", "overflow = drop",
                   "start_at = beginning", "rotate_wait = 9"):
        new = inputs(tmp_path, "[input:f]\ntype = file\n"
                     + ("" if change.startswith("path") else "path = /tmp/f.log\n")
                     + change + "\n")
        assert plan(old, new).restarted == ["f"], change
