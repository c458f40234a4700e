"""The multiline and filter keys: defaults, and configs that can never work refused at
load (one line naming file, section and key) instead of failing at the first line read."""

import pytest

from tailrabbit import config
from tailrabbit.ini import ConfigError

INPUT = "[input:api]\ntype = file\npath = /var/log/api.log\n"


def load(tmp_path, text):
    path = tmp_path / "c.ini"
    path.write_text(text)
    return config.load(str(path), environ={})


def test_defaults_and_values(tmp_path):
    [item] = load(tmp_path, INPUT).inputs
    assert (item.multiline, item.multiline_start, item.include, item.exclude) == (None,) * 4
    assert (item.multiline_max_lines, item.multiline_timeout) == (500, 1.0)
    [item] = load(tmp_path, INPUT + "multiline_start = ^\\d{4}-\nmultiline_max_lines = 50\n"
                                    "multiline_timeout = 0.5\nexclude = GET /healthz\n"
                                    "include = 5\\d\\d|%%\n").inputs
    assert (item.multiline_start, item.multiline_max_lines, item.multiline_timeout,
            item.exclude, item.include) == ("^\\d{4}-", 50, 0.5, "GET /healthz", "5\\d\\d|%")
    assert item.joins_lines


@pytest.mark.parametrize("keys,problem", [
    ("multiline_start = ([a-z\n", "[input:api] multiline_start: is not a valid regular"),
    ("include = *x\n", "[input:api] include: is not a valid regular expression"),
    ("exclude =\n", "[input:api] exclude: is empty"),
    ("multiline = ruby\n", "[input:api] multiline"),
    ("multiline = java\nmultiline_start = x\n", "exclude each other"),
    ("multiline_timeout = 2\n", "applies only with multiline or multiline_start"),
    ("multiline = java\nmultiline_max_lines = 0\n", "[input:api] multiline_max_lines"),
])
def test_bad_values_are_refused_with_file_section_and_key(tmp_path, keys, problem):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, INPUT + keys)
    assert problem in str(error.value) and "c.ini" in str(error.value)


def test_check_names_what_shapes_an_inputs_messages(tmp_path):
    from tailrabbit.check import shaping
    [plain] = load(tmp_path, INPUT).inputs
    assert shaping(plain) == ""
    [item] = load(tmp_path, INPUT + "multiline = python\nexclude = healthz\n"
                                    "batch_lines = 10\n").inputs
    assert shaping(item) == ", batch_lines=10, multiline='python', exclude='healthz'"
