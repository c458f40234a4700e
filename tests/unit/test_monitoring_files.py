"""The monitoring examples in config/ (Prometheus alert rules, Grafana dashboard) name only
metrics and labels tailrabbit really exports, and parse; and the lag figures behind two of
those metrics (lag.py and its accessors) are right.

The exported names come from a real registry (MetricsServer's, as /metrics serves it) over
real counters, a real buffer and publisher, and a file input double: a renamed metric fails
here, not on an operator's dashboard. tests/faults/test_lag_metrics.py checks the same
against a real process's /metrics. promtool checks and unit-tests the rules where it is
installed (Debian package `prometheus`).
"""

import json
import os
import re
import shutil
import subprocess
from types import SimpleNamespace

import pytest

from helpers import REPO
from tailrabbit.buffer import LineBuffer
from tailrabbit.lag import file_lag, oldest_unconfirmed_seconds
from tailrabbit.line import Batch
from tailrabbit.metrics import MetricsServer
from tailrabbit.publisher.trackers import InputTrackers
from tailrabbit.publisher.loop import Publisher
from tailrabbit.stats import Stats

RULES = os.path.join(REPO, "config", "prometheus", "tailrabbit-alerts.yml")
RULES_TEST = os.path.join(REPO, "config", "prometheus", "tailrabbit-alerts.test.yml")
DASHBOARD = os.path.join(REPO, "config", "grafana", "tailrabbit-dashboard.json")

# Made by Prometheus, not by the exporter: `up` per target, `job`/`instance` per series.
PROMETHEUS_METRICS = {"up"}
TARGET_LABELS = {"job", "instance"}
# Grafana's own: the alert rules use none, the dashboard these.
GRAFANA_VARIABLES = re.compile(r"\$\{?\w+\}?")

PROMQL_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
                   "group_right", "offset", "bool", "inf", "nan"}
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


# ---- reading the files ---------------------------------------------------------------------

def promql_names(expr):
    """(metric names, label names) an expression uses. Enough PromQL for these files:
    strings, label matchers, ranges, grouping clauses, Grafana variables, functions."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', GRAFANA_VARIABLES.sub("", expr))
    labels = set()
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        labels.update(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)
    for group in GROUPING.findall(expr):
        labels.update(name.strip() for name in group.split(",") if name.strip())
    expr = GROUPING.sub(" ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.:])[A-Za-z_:][\w:]*", expr):
        word = match.group()
        if word.lower() in PROMQL_KEYWORDS or expr[match.end():].lstrip().startswith("("):
            continue                    # a keyword, or a function or aggregation
        names.add(word)
    return names, labels


def rule_blocks(text):
    """Each alerting rule of the rules file as {key: text}: `expr` (inline or a folded
    block), `for`, `severity`, `summary`, `description`. A line reader, so the test needs
    no YAML library; promtool (below) parses the file for real."""
    blocks = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = re.match(r"^(\s*)- alert:\s*(\S+)", line)
        if not match:
            continue
        indent = len(match.group(1)) + 2
        block = {"alert": match.group(2)}
        body = []
        for following in lines[index + 1:]:
            if following.strip() and (len(following) - len(following.lstrip()) < indent
                                      or following.lstrip().startswith("- alert:")):
                break
            body.append(following)
        key = None
        for following in body:
            stripped = following.strip()
            field = re.match(r"^(expr|for|severity|summary|description):\s*(.*)$", stripped)
            if field:
                key, value = field.groups()
                block[key] = "" if value in (">-", ">", "|", "|-") else value.strip('"')
            elif re.match(r"^\w+:", stripped) or stripped.startswith("#"):
                key = None
            elif key and stripped:
                block[key] = (block[key] + " " + stripped).strip()
        blocks.append(block)
    return blocks


def dashboard_queries(dashboard):
    """Every PromQL expression of the dashboard: panel targets and the variables' queries
    (label_values(METRIC{...}, LABEL) -> the selector and the label)."""
    exprs, legend_labels = [], set()
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            exprs.append(target["expr"])
            legend_labels.update(re.findall(r"\{\{\s*(\w+)\s*\}\}",
                                            target.get("legendFormat", "")))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]["query"] if isinstance(variable["query"], dict) \
            else variable["query"]
        match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query)
        assert match, f"variable {variable['name']}: unexpected query {query!r}"
        exprs.append(match.group(1))
        legend_labels.add(match.group(2))
    return exprs, legend_labels


# ---- what tailrabbit exports ---------------------------------------------------------------

class FileInputDouble:
    """A file input as lag.py sees it: a name and `followed()`."""

    def __init__(self, name, follows):
        self.name, self.follows = name, follows

    def followed(self):
        return self.follows


def make_publisher(buffer, stats):
    broker = SimpleNamespace(hosts=[("127.0.0.1", 5672)], host_order="ordered")
    return Publisher(broker, [], buffer, stats)


@pytest.fixture
def exported(tmp_path):
    """{sample name: label names} of a real /metrics registry with every family filled."""
    path = tmp_path / "api.log"
    path.write_bytes(b"x" * 100)
    fd = os.open(path, os.O_RDONLY)
    stats = Stats(["api"])
    buffer = LineBuffer(100)
    buffer.put(Batch("api", [b"held"]))
    publisher = make_publisher(buffer, stats)
    inputs = SimpleNamespace(inputs={"api": FileInputDouble(
        "api", [(str(path), fd, SimpleNamespace(offset=40))])})
    server = MetricsServer(("127.0.0.1", 0), stats, buffer, inputs, publisher)
    try:
        names = {}
        for family in server.registry.collect():
            for sample in family.samples:
                names.setdefault(sample.name, set()).update(sample.labels)
        return names
    finally:
        os.close(fd)


def test_the_registry_exports_the_lag_metrics(exported):
    assert exported["tailrabbit_file_lag_bytes"] == {"input", "path"}
    assert exported["tailrabbit_oldest_unconfirmed_seconds"] == {"input"}
    assert exported["tailrabbit_messages_published_total"] == {"input"}
    assert "tailrabbit_connected" in exported


def check_names(where, names, labels, exported):
    unknown = names - set(exported) - PROMETHEUS_METRICS
    assert not unknown, f"{where}: not metrics tailrabbit exports: {sorted(unknown)}"
    known_labels = set().union(*exported.values()) | TARGET_LABELS
    unknown = labels - known_labels
    assert not unknown, f"{where}: not labels tailrabbit exports: {sorted(unknown)}"


# ---- the alert rules -----------------------------------------------------------------------

def test_every_alert_rule_names_real_metrics_and_is_complete(exported):
    with open(RULES) as handle:
        text = handle.read()
    blocks = rule_blocks(text)
    assert {b["alert"] for b in blocks} >= {"TailrabbitDisconnected", "TailrabbitFileLagGrowing",
                                           "TailrabbitLinesUnconfirmed", "TailrabbitSpooling",
                                           "TailrabbitLinesDropped"}
    assert len(blocks) == text.count("- alert:")
    for block in blocks:
        where = f"{RULES}: {block['alert']}"
        assert block.get("expr"), f"{where}: no expr"
        assert re.fullmatch(r"\d+[smh]", block.get("for", "")), f"{where}: no for:"
        assert block.get("severity") in ("warning", "critical"), f"{where}: severity"
        assert block.get("summary") and block.get("description"), f"{where}: annotations"
        names, labels = promql_names(block["expr"])
        assert names, f"{where}: no metric found in {block['expr']!r}"
        templated = set(re.findall(r"\$labels\.(\w+)",
                                   block["summary"] + block["description"]))
        check_names(where, names, labels | templated, exported)


def test_the_alert_rules_are_yaml():
    yaml = pytest.importorskip("yaml")
    with open(RULES) as handle:
        groups = yaml.safe_load(handle)["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    with open(RULES) as handle:
        blocks = rule_blocks(handle.read())
    assert [r["alert"] for r in rules] == [b["alert"] for b in blocks]
    assert [" ".join(r["expr"].split()) for r in rules] == [b["expr"] for b in blocks]


def promtool():
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    return found


def test_promtool_checks_the_rules():
    result = subprocess.run([promtool(), "check", "rules", RULES], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_of_the_rules_pass():
    """Each alert fires on a synthetic outage and stays quiet on a healthy series."""
    result = subprocess.run([promtool(), "test", "rules", os.path.basename(RULES_TEST)],
                            cwd=os.path.dirname(RULES_TEST), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# ---- the dashboard -------------------------------------------------------------------------

def test_every_dashboard_query_names_real_metrics(exported):
    with open(DASHBOARD) as handle:
        dashboard = json.load(handle)
    exprs, legend_labels = dashboard_queries(dashboard)
    used = set()
    for expr in exprs:
        names, labels = promql_names(expr)
        assert names, f"{DASHBOARD}: no metric in {expr!r}"
        check_names(f"{DASHBOARD}: {expr}", names, labels, exported)
        used |= names
    check_names(f"{DASHBOARD}: legends", set(), legend_labels, exported)
    assert used >= {"tailrabbit_lines_read_total", "tailrabbit_lines_published_total",
                    "tailrabbit_lines_confirmed_total", "tailrabbit_messages_published_total",
                    "tailrabbit_buffered_lines", "tailrabbit_lines_spooled_total",
                    "tailrabbit_lines_dropped_total", "tailrabbit_lines_filtered_total",
                    "tailrabbit_file_lag_bytes", "tailrabbit_oldest_unconfirmed_seconds",
                    "tailrabbit_connected"}


def test_the_dashboard_takes_its_prometheus_from_a_variable():
    with open(DASHBOARD) as handle:
        dashboard = json.load(handle)
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["id"] is None and dashboard["uid"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids, places = set(), []
    for panel in dashboard["panels"]:
        assert panel["id"] not in ids
        ids.add(panel["id"])
        for target in [panel] + panel.get("targets", []):
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        places.append((grid["x"], grid["y"], grid["w"], grid["h"]))
    for i, (x, y, w, h) in enumerate(places):      # no two panels overlap
        for x2, y2, w2, h2 in places[i + 1:]:
            assert x + w <= x2 or x2 + w2 <= x or y + h <= y2 or y2 + h2 <= y


# ---- the expression reader itself ----------------------------------------------------------

@pytest.mark.parametrize("expr, names, labels", [
    ('sum by (input) (rate(a_total{instance=~"$instance", input=~"$input"}'
     '[$__rate_interval]))', {"a_total"}, {"input", "instance"}),
    ("b > 10 * 1024 * 1024 and deriv(b[10m]) > 0", {"b"}, set()),
    ('up{job="x by (y)"} == 0 unless on (instance) c offset 5m', {"up", "c"},
     {"job", "instance"}),
    ("max without (path) (d) > 1e6", {"d"}, {"path"}),
])
def test_promql_names(expr, names, labels):
    assert promql_names(expr) == (names, labels)


# ---- lag.py --------------------------------------------------------------------------------

def test_file_lag_is_size_minus_the_confirmed_offset(tmp_path):
    (tmp_path / "a.log").write_bytes(b"a" * 1000)
    (tmp_path / "b.log").write_bytes(b"b" * 10)
    (tmp_path / "old").write_bytes(b"o" * 300)
    fds = [os.open(tmp_path / name, os.O_RDONLY) for name in ("a.log", "b.log", "old")]
    closed = os.open(tmp_path / "a.log", os.O_RDONLY)
    os.close(closed)
    try:
        a, b = str(tmp_path / "a.log"), str(tmp_path / "b.log")
        web = FileInputDouble("web", [
            (a, fds[0], SimpleNamespace(offset=600)),
            (b, fds[1], SimpleNamespace(offset=50)),       # truncated, not yet noticed
            (a, fds[2], SimpleNamespace(offset=100)),      # renamed away, same path
            (a, closed, SimpleNamespace(offset=0)),        # closed meanwhile
        ])
        fifo = SimpleNamespace(name="pipe")                # no followed(): not a file
        assert file_lag([web, fifo]) == {("web", a): 400 + 200, ("web", b): 0}
    finally:
        for fd in fds:
            os.close(fd)


def test_oldest_unconfirmed_over_buffer_in_flight_and_set_aside():
    stats = Stats(["web", "api", "idle"])
    buffer = LineBuffer(1000)
    publisher = make_publisher(buffer, stats)
    assert oldest_unconfirmed_seconds(stats.inputs, buffer, publisher, now=1000) == {
        "web": 0.0, "api": 0.0, "idle": 0.0}
    buffer.put(Batch("web", [b"new"], timestamp=990))
    buffer.put(Batch("web", [b"newer"], timestamp=995))
    buffer.put(Batch("api", [b"x"], timestamp=999))
    assert oldest_unconfirmed_seconds(stats.inputs, buffer, publisher, now=1000) == {
        "web": 10.0, "api": 1.0, "idle": 0.0}
    publisher._trackers.add(Batch("web", [b"in flight"], timestamp=980))
    publisher._resend.append(Batch("api", [b"set aside"], timestamp=970))
    assert oldest_unconfirmed_seconds(stats.inputs, buffer, publisher, now=1000) == {
        "web": 20.0, "api": 30.0, "idle": 0.0}
    assert oldest_unconfirmed_seconds(stats.inputs, buffer, None, now=1000)["web"] == 10.0
    assert oldest_unconfirmed_seconds(["web"], buffer, publisher, now=900) == {"web": 0.0}


def test_accessors_follow_takes_and_confirms():
    buffer = LineBuffer(1000)
    first, second = Batch("web", [b"1"], timestamp=10), Batch("web", [b"2"], timestamp=20)
    buffer.put(first)
    buffer.put(second)
    assert buffer.oldest_timestamps() == {"web": 10}
    assert buffer.take(1) == [first]
    assert buffer.oldest_timestamps() == {"web": 20}
    buffer.take(1)
    assert buffer.oldest_timestamps() == {}

    trackers = InputTrackers()
    trackers.add(first)
    trackers.add(second)
    assert trackers.oldest_timestamps() == {"web": 10}
    assert trackers.ack("web", 1, False) == [first]
    assert trackers.oldest_timestamps() == {"web": 20}
    trackers.ack("web", 2, False)
    assert trackers.oldest_timestamps() == {}
