"""Prometheus metrics: the text exposition format, rendered at every tick from
the BPF side's stats, written to a node_exporter textfile (--metrics-file:
a temporary file renamed over the old one) and/or served on /metrics
(--metrics-listen). The HTTP thread only hands out the last rendered text.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Optional

from oomkiller.bpf.generation import SetupError
from oomkiller.config.policy import DEFAULT
from oomkiller.config.rules import OFF, RULES
from oomkiller.outputs.snapshot import Snapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Text:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def metric(self, name: str, kind: str, help: str,
               samples: list[tuple[dict[str, object], int]]) -> None:
        self.lines += [f"# HELP {name} {help}", f"# TYPE {name} {kind}"]
        for labels, value in samples:
            text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{text}}} {value}" if text else f"{name} {value}")


def render(snap: Snapshot) -> str:
    st = snap.stats
    t = _Text()

    def per_rule(name: str, help: str, values) -> None:
        t.metric(name, "counter", help, [({"rule": r.name}, values[r.id]) for r in RULES])

    per_rule("oomkiller_kills_total", "Targets killed with SIGKILL, by the rule they crossed.",
             st.rule_kills)
    per_rule("oomkiller_condemned_total", "Targets that crossed a limit, by rule.",
             st.rule_condemned)
    per_rule("oomkiller_dry_runs_total", "Kills reported but not sent (--dry-run), by rule.",
             st.rule_dry_runs)
    per_rule("oomkiller_kills_refused_total",
             "SIGKILLs the kernel refused (retried at the next sweep), by rule.",
             st.rule_kill_failed)
    pols = snap.settings.policies
    on = set().union(*(p.enabled() for p in pols))
    t.metric("oomkiller_rule_enabled", "gauge", "1 if the rule is on in some policy, 0 if not.",
             [({"rule": r.name}, int(r.name in on)) for r in RULES])
    off = snap.rules_off
    t.metric("oomkiller_rule_supported", "gauge",
             "1 if this kernel can enforce the rule, 0 if it lacks what the rule needs.",
             [({"rule": r.name}, int(r.name not in off)) for r in RULES])
    default = [p for p in pols if p.name == DEFAULT]
    t.metric("oomkiller_rule_limit", "gauge", "The limit of each rule on in the default policy.",
             [({"rule": r.name}, p.limits[r.id]) for p in default for r in RULES
              if p.limits[r.id] < OFF])
    per_policy(t, snap)
    t.metric("oomkiller_tracked_processes", "gauge", "Targets in the process map.",
             [({}, st.tracked)])
    t.metric("oomkiller_capacity_processes", "gauge", "Size of the process map (--capacity).",
             [({}, snap.settings.capacity)])
    t.metric("oomkiller_untracked_total", "counter",
             "Target events not tracked because the process map was full.",
             [({}, st.untracked)])
    t.metric("oomkiller_untracked_threads_total", "counter",
             "Target threads not tracked because the thread map was full.",
             [({}, st.untracked_threads)])
    t.metric("oomkiller_rand_holds_total", "counter",
             "Targets stopped until a file they mapped was checked for rand().",
             [({}, st.holds)])
    t.metric("oomkiller_rand_unprobeable_files", "gauge",
             "Files whose rand() calls can't be counted (a static program without "
             "symbols; no room).", [({}, st.unprobeable)])
    t.metric("oomkiller_rand_files_unchecked_total", "counter",
             "Mappings of a target not checked for rand() (the holds map was full).",
             [({}, st.libs_unseen)])
    t.metric("oomkiller_events_dropped_total", "counter",
             "Events lost because the ring buffer was full.", [({}, st.dropped)])
    t.metric("oomkiller_memory_used_bytes", "gauge",
             "RAM in use (total - free, as si_meminfo() reports it) at the last sample.",
             [({}, st.mem_used)])
    t.metric("oomkiller_gate_threshold_bytes", "gauge",
             "Memory use at which kills are sent: the lowest min-used of all policies.",
             [({}, min(p.min_used for p in pols))])
    t.metric("oomkiller_gate_open", "gauge", "1 while memory use is at or over the gate.",
             [({}, int(bool(st.gate_open)))])
    t.metric("oomkiller_samples_total", "counter", "Memory samples taken.", [({}, st.samples)])
    t.metric("oomkiller_sweeps_total", "counter", "Sweeps of condemned targets.",
             [({}, st.sweeps)])
    t.metric("oomkiller_hook_runs_skipped_total", "counter",
             "Runs of a BPF program the kernel skipped (recursion guard), by program.",
             [({"program": name}, n) for name, n in sorted(snap.skipped.items())])
    info = {"version": snap.version, "generation": snap.generation, **snap.families}
    t.metric("oomkiller_info", "gauge", "Version, generation and attach families in use.",
             [(info, 1)])
    return "\n".join(t.lines) + "\n"


def per_policy(t: _Text, snap: Snapshot) -> None:
    """Series labelled by policy, for the policies in force only (at most
    64 x 6 per family). Kill, dry-run and condemned totals are counted from
    the events the loader received (an event dropped from a full ring
    buffer is missing here; the per-rule totals above are BPF's own)."""
    pols = snap.settings.policies
    counts = snap.event_counts
    for kind, name, help in (
            ("kill", "oomkiller_policy_kills_total", "Targets killed, by policy and rule."),
            ("condemned", "oomkiller_policy_condemned_total",
             "Targets that crossed a limit with their gate closed, by policy and rule."),
            ("dry-run", "oomkiller_policy_dry_runs_total",
             "Kills reported but not sent (dry-run), by policy and rule.")):
        t.metric(name, "counter", help,
                 [({"policy": p.name, "rule": r.name}, counts.get((kind, p.name, r.name), 0))
                  for p in pols for r in RULES if p.limits[r.id] < OFF])
    t.metric("oomkiller_policy_limit", "gauge", "The limit of each rule on, by policy.",
             [({"policy": p.name, "rule": r.name}, p.limits[r.id])
              for p in pols for r in RULES if p.limits[r.id] < OFF])
    t.metric("oomkiller_policy_gate_threshold_bytes", "gauge",
             "Memory use at which the policy's kills are sent (min-used).",
             [({"policy": p.name}, p.min_used) for p in pols])


def write_atomically(path: str, text: str) -> None:
    """A reader sees the old file or the new one, never a part (rename(2))."""
    tmp = os.path.join(os.path.dirname(path) or ".", f".oomkiller-{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def parse_listen(text: str) -> tuple[str, int]:
    """HOST:PORT, [V6]:PORT or PORT (host 127.0.0.1). ValueError if not."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not HOST:PORT with a port 1-65535: {text!r}")
    return host or "127.0.0.1", int(port)


def _serve(addr: tuple[str, int], exporter: "Exporter"):
    """An HTTPServer on addr that answers GET /metrics with exporter.text.
    http.server is imported only here: a killer without a listener does
    not pay its memory."""
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404, "only /metrics is here")
                return
            body = exporter.text.encode()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # scrapes are not news

    class Server(http.server.HTTPServer):
        address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET

    return Server(addr, Handler)


class Exporter:
    """Where the metrics go. A file that can't be written costs a warning;
    a listener that can't bind is a setup error (the user asked for it)."""

    def __init__(self, path: Optional[str], listen: Optional[str]) -> None:
        self.path = path
        self.text = ""
        self._server = None
        self._thread: Optional[threading.Thread] = None
        self.failed_path: Optional[str] = None
        if listen:
            host, port = parse_listen(listen)
            try:
                self._server = _serve((host, port), self)
            except OSError as e:
                raise SetupError(f"cannot listen on {listen} for metrics: {e.strerror}: "
                                 "pick another --metrics-listen") from None
            self._thread = threading.Thread(target=self._server.serve_forever,
                                            name="metrics", daemon=True)
            self._thread.start()

    @property
    def address(self) -> Optional[tuple[str, int]]:
        return self._server.server_address[:2] if self._server else None

    @property
    def active(self) -> bool:
        return bool(self.path or self._server)

    def update(self, snap: Snapshot, warn) -> None:
        """Render this tick's snapshot; write it out if a file was asked for."""
        if not self.active:
            return
        self.text = render(snap)
        if self.path:
            try:
                write_atomically(self.path, self.text)
                self.failed_path = None
            except OSError as e:
                if self.failed_path != self.path:  # once per path, not every tick
                    warn(f"cannot write metrics to {self.path}: {e.strerror}")
                self.failed_path = self.path

    def close(self) -> None:
        """Stop serving; remove our textfile, so a stopped killer's last
        numbers are not read as current (absent() alerts on it)."""
        if self.path and self.failed_path is None and self.text:
            try:
                os.unlink(self.path)
            except OSError:
                pass
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
