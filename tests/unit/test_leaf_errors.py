"""Exit codes and config errors are leaves: named codes (tailrabbit/exits.py) that import
nothing, a ConfigError that keeps its parts, and no import cycle through the command line."""

import ast
import pathlib
import pickle

import pytest

from tailrabbit import exits
from tailrabbit.ini import ConfigError

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "tailrabbit"


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE.parent).as_posix(), ast.parse(path.read_text())


def test_exit_codes_are_the_contract():
    """CONTRACT.md: 0 clean stop, 1 unexpected failure, 69 (--check) no broker, 78 config."""
    assert (exits.OK, exits.FAILURE, exits.UNAVAILABLE, exits.CONFIG) == (0, 1, 69, 78)


def test_exits_imports_nothing():
    tree = ast.parse((PACKAGE / "exits.py").read_text())
    assert not [node for node in ast.walk(tree)
                if isinstance(node, (ast.Import, ast.ImportFrom))]


def test_no_module_imports_the_command_line():
    """cli.py is the top: check.py importing it for exit codes made a cycle."""
    importers = []
    for name, tree in modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "tailrabbit.cli" \
                    or isinstance(node, ast.Import) and any(
                        alias.name == "tailrabbit.cli" for alias in node.names) \
                    or isinstance(node, ast.ImportFrom) and node.module == "tailrabbit" \
                    and any(alias.name == "cli" for alias in node.names):
                importers.append(name)
    assert importers == ["tailrabbit/__main__.py"]


def test_no_exit_status_is_a_bare_number():
    """Halt(...), SystemExit(...), sys.exit(...) take an exits.* name."""
    found = []
    for name, tree in modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and node.args \
                    and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, int) \
                    and ast.unparse(node.func) in ("Halt", "SystemExit", "sys.exit",
                                                   "os._exit", "exit"):
                found.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
    assert found == []


def test_the_command_line_returns_named_codes():
    found = []
    for name in ("cli.py", "check.py"):
        tree = ast.parse((PACKAGE / name).read_text())
        found += [f"{name}:{node.lineno}" for node in ast.walk(tree)
                  if isinstance(node, ast.Return) and isinstance(node.value, ast.Constant)
                  and isinstance(node.value.value, int)]
    assert found == []


# Config-time validation that a queue's `arguments` encode as an AMQP table uses
# py-amqp's encoder; it is not a connection. Listed so that a new importer is noticed.
AMQP_OUTSIDE_PUBLISHER = {"tailrabbit/amqp_limits.py"}


def test_only_the_publisher_imports_amqp():
    importers = set()
    for name, tree in modules():
        for node in ast.walk(tree):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) \
                else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n == "amqp" or n.startswith("amqp.") for n in names) \
                    and not name.startswith("tailrabbit/publisher/"):
                importers.add(name)
    assert importers == AMQP_OUTSIDE_PUBLISHER


@pytest.mark.parametrize("parts,line", [
    (("/etc/t.ini", "rabbitmq", "port", "must be a whole number, got 'five'"),
     "/etc/t.ini: [rabbitmq] port: must be a whole number, got 'five'"),
    (("/etc/t.ini", "inputs", None, "unknown section"), "/etc/t.ini: [inputs]: unknown section"),
    (("/etc/t.ini", None, None, "no such file"), "/etc/t.ini: no such file"),
    (("command line", None, "--log-level", "must be one of DEBUG"),
     "command line --log-level: must be one of DEBUG"),
])
def test_config_error_keeps_its_parts_and_prints_the_same_line(parts, line):
    error = ConfigError(*parts)
    assert (error.path, error.section, error.key, error.problem) == parts
    assert str(error) == line
    again = pickle.loads(pickle.dumps(error))
    assert (again.path, again.section, again.key, again.problem, str(again)) == \
        (*parts, line)
