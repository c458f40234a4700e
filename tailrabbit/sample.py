"""The commented sample config printed by `tailrabbit -m` (it passes `--check` as is)."""

SAMPLE_CONFIG = """\
; tailrabbit configuration. Every key is optional unless marked required.
; A literal percent sign is written %% (ConfigParser interpolation).

[tailrabbit]
; Read checkpoints and pipe spools live here (default: a per-user state dir). It holds
; log lines: made 0700 at start, refused if its group or others can write in it.
;state_dir = /var/lib/tailrabbit
; Lines held in memory, all inputs together.
buffer = 100000
; And bytes held in memory (256 MiB): the buffer is full at either bound, then each
; input's overflow applies (spool for FIFOs, block for files and stdin).
buffer_bytes = 268435456
; Seconds between per-input stats log lines (0 = off); SIGUSR1 logs them at once.
stats_interval = 60
; Seconds to publish what is buffered on SIGTERM/SIGINT.
shutdown_timeout = 10

[rabbitmq]
; One host, or a list tried in order: rabbit1, rabbit2:5673
host = localhost
; ordered (first host first) or shuffle (each process its own order: spreads many
; shippers over a cluster). A lost node: the next host is tried at once.
host_order = ordered
port = 5672
vhost = /
user = guest
; Or password_file = PATH, or password_env = VARNAME.
password = guest
heartbeat = 30
connect_timeout = 5
; Seconds between planned reconnects (None = never); nothing is lost or repeated.
refresh = 50
; Publisher confirms: a line counts as delivered only when the broker confirmed it.
confirm = True
; Metadata headers of every message, the default of every input (an input may override):
; input, host, path (fifo, file), offset (file). Empty = none: the lightest message for
; the broker. A cut line always carries truncated.
;headers = input, host, path, offset

; One section per input; the name after "input:" is the input's name: letters, digits,
; '.', '_', '-', at most 100 bytes (it names the input's files in state_dir).
[input:nginx]
; nginx writes its access log into this named pipe (created 0640 if missing: the nginx
; master opens its logs as root, so it can write; nobody else can). Keep it out of
; world-writable directories such as /tmp. An existing FIFO must be ours or root's and
; not writable by others.
type = fifo
path = /var/log/nginx/access.fifo
queue = nginx
durable = True
delivery_mode = 2

[input:api]
; A log file, or a glob such as /var/log/api/*.log; followed across logrotate.
type = file
path = /var/log/api/*.log
queue = api
; First run only: read files already present from their beginning or their end.
start_at = end
; A glob match that is a symbolic link is skipped (WARNING): anyone who can write in the
; log directory could otherwise make tailrabbit ship another file. True follows links.
; A path named exactly, without a glob, may always be a link.
;follow_symlinks = False
; Up to batch_lines lines of one file per message (each followed by "\\n", header lines =
; their count, offset = the first line's); what is read is sent at once, never held to
; fill a batch. 1 = one message per line. batch_bytes bounds a message's body.
;batch_lines = 100
;batch_bytes = 1048576
; none or gzip (body gzipped, content_encoding gzip).
;compress = none
; Multiline: one message per event (a traceback), its lines joined by "\\n", bytes exact.
; Either a preset that knows tracebacks (python, java) or your own start regex: a line
; that matches starts an event, others are appended to it. An event held this long
; without a new line is published (multiline_timeout, seconds); longer events are cut
; at multiline_max_lines lines or max_line_bytes bytes (flagged truncated). With
; batch_lines > 1, header lengths gives each event's bytes.
;multiline = python
;multiline_start = ^\\d{4}-\\d{2}-\\d{2}
;multiline_max_lines = 500
;multiline_timeout = 1
; Filters (Python regular expressions, searched in each line or event): only lines that
; match include are published; lines that match exclude are not. Filtered lines count
; as done (checkpoints, tailrabbit_lines_filtered_total).
;include = ERROR|CRITICAL
;exclude = "GET /healthz

[logging]
; Logs go to stderr. DEBUG, INFO, WARNING, ERROR or a number (-l overrides it).
level = INFO
; text: one line per event in log_format. json: one JSON object per line, with ts (UTC),
; level, event (its stable name, e.g. file_rotated, connection_lost; see the README),
; message and the event's fields (input, path, address, count, reason...): for
; journald, Loki or Elasticsearch. log_format and log_datefmt apply to text only.
style = text
; In log_format, %%(event)s is the event's name (log for a line that has none).
;log_format = %%(asctime)s - %%(levelname)s - %%(message)s
;log_datefmt = %%m/%%d/%%Y %%I:%%M:%%S %%p
"""
