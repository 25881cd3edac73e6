"""Prometheus metrics from a live killer: the textfile and the HTTP endpoint
pass `promtool check metrics`, the shipped alert rules pass `promtool check
rules`, and a real Prometheus started here scrapes the endpoint and returns a
kill counted by rule through its HTTP API, and the shipped alert fires."""
from __future__ import annotations

import json
import re
import socket
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

import killer as K

RULES_FILE = K.ROOT / "dist" / "oomkiller.rules.yml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def promtool_metrics(text: str) -> subprocess.CompletedProcess:
    return subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                          capture_output=True, timeout=30)


def series(text: str) -> dict[str, float]:
    return {ln.rsplit(" ", 1)[0]: float(ln.rsplit(" ", 1)[1])
            for ln in text.splitlines() if ln and not ln.startswith("#")}


def test_shipped_alert_rules_pass_promtool():
    res = subprocess.run(["promtool", "check", "rules", str(RULES_FILE)], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_skipped_runs_alert_is_for_counting_programs(tmp_path):
    # The shipped expression, run by promtool on made-up series: a counting
    # program's skipped runs fire it, a memory sampler's (whose skip only
    # delays a gate reading) and a program that skipped nothing don't.
    rules = RULES_FILE.read_text()
    m = re.search(r"- alert: OomkillerHookRunsSkipped\n\s+expr: (.+)\n", rules)
    assert m, "no OomkillerHookRunsSkipped alert in " + str(RULES_FILE)
    series = [("tp_sys_exit", "0 0 5 5 5"), ("fx_mem_si_meminfo", "0 0 9 9 9"),
              ("on_exit", "0 0 0 0 0")]
    test = tmp_path / "skipped.test.yml"
    test.write_text(json.dumps({"evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [{"series": f'oomkiller_hook_runs_skipped_total{{program="{p}"}}',
                          "values": v} for p, v in series],
        "promql_expr_test": [{"expr": m.group(1), "eval_time": "3m",
                              "exp_samples": [{"labels": '{program="tp_sys_exit"}', "value": 5}]}],
    }]}))
    res = subprocess.run(["promtool", "test", "rules", str(test)], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr


class Prometheus:
    """A real Prometheus scraping one target every second, with our alert rules."""

    def __init__(self, tmp: Path, target: str):
        self.port = free_port()
        conf = tmp / "prometheus.yml"
        conf.write_text(json.dumps({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES_FILE)],
            "scrape_configs": [{"job_name": "oomkiller",
                                "static_configs": [{"targets": [target]}]}],
        }))
        self.log = open(tmp / "prometheus.log", "w")
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={conf}", f"--storage.tsdb.path={tmp / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def api(self, path: str, **params: str) -> dict:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        return json.loads(get(url))["data"]

    def query(self, expr: str) -> list[dict]:
        try:
            return self.api("query", query=expr)["result"]
        except OSError:
            return []

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def test_metrics_count_a_kill_by_rule_and_prometheus_sees_it(e2e_session, tmp_path):
    port = free_port()
    prom_file = tmp_path / "oomkiller.prom"
    with K.Killer("--min-used", "0", "--metrics-file", prom_file,
                  "--metrics-listen", f"127.0.0.1:{port}") as k:
        prom = Prometheus(tmp_path, f"127.0.0.1:{port}")
        try:
            # Prometheus has scraped the killer before the kill: 0, then 1.
            assert K.wait_until(lambda: prom.query('oomkiller_kills_total{rule="writes"}'), 60, 0.2), \
                (tmp_path / "prometheus.log").read_text()[-2000:]
            res = K.work("write", 150)
            assert res.killed, res.describe()
            ev = k.wait_event(pid=res.pid, kind="kill")
            assert ev is not None and K.rule_key(ev["rule"]) == "writes", k.events

            def counted():
                r = prom.query('oomkiller_kills_total{rule="writes"}')
                return r and r[0]["value"][1] == "1"
            assert K.wait_until(counted, 30, 0.2), prom.query("oomkiller_kills_total")
            others = prom.query('oomkiller_kills_total{rule!="writes"}')
            assert len(others) == 5 and all(s["value"][1] == "0" for s in others), others
            condemned = prom.query('oomkiller_condemned_total{rule="writes"}')
            assert condemned[0]["value"][1] == "1", condemned

            def firing():
                alerts = prom.api("alerts")["alerts"]
                return [a for a in alerts if a["labels"].get("alertname") == "OomkillerKilled"
                        and a["labels"].get("rule") == "writes" and a["state"] == "firing"]
            assert K.wait_until(firing, 60, 0.5), prom.api("alerts")
        finally:
            prom.close()

        k.wait_samples(1)
        body = get(f"http://127.0.0.1:{port}/metrics")
        for text in (body, prom_file.read_text()):
            res = promtool_metrics(text)
            assert res.returncode == 0, res.stdout + res.stderr
        s = series(body)
        assert s['oomkiller_kills_total{rule="writes"}'] == 1
        assert s["oomkiller_gate_open"] == 1 and s["oomkiller_gate_threshold_bytes"] == 0
        assert s["oomkiller_memory_used_bytes"] > 0
        assert s["oomkiller_capacity_processes"] == 16384
        assert s["oomkiller_samples_total"] >= 2 and "oomkiller_sweeps_total" in s
        assert s['oomkiller_rule_enabled{rule="rand"}'] == 1
        assert any(key.startswith("oomkiller_info{") for key in s)
        assert any(key.startswith('oomkiller_hook_runs_skipped_total{program="on_exit') for key in s)
        with pytest.raises(urllib.error.HTTPError) as e:
            get(f"http://127.0.0.1:{port}/other")
        assert e.value.code == 404
        assert not list(tmp_path.glob(".oomkiller-*")), "a temporary metrics file was left"


def test_tracked_gauge_follows_the_process_map(e2e_session, tmp_path):
    prom_file = tmp_path / "m.prom"
    with K.Killer("--metrics-file", prom_file) as k:
        with K.sleeper("write", 5) as w:
            assert w.wait_state(K.S_SLEEPING)
            k.wait_samples(2)
            st = k.status()
            assert series(prom_file.read_text())["oomkiller_tracked_processes"] == st["tracked"] >= 1
        k.wait_samples(2)
        assert series(prom_file.read_text())["oomkiller_tracked_processes"] == k.status()["tracked"]


def test_a_rule_switched_off_loads_none_of_its_programs(e2e_session, tmp_path):
    prom_file = tmp_path / "m.prom"
    before = K.bpf_prog_ids()
    with K.Killer("--min-used", "0", "--max-rand", "off", "--metrics-file", prom_file) as k:
        names = set(K.bpf_prog_names(K.bpf_prog_ids() - before).values())
        assert names and not any(n.startswith("on_rand") for n in names), names
        assert "rand=off" in k.ready_line and "rand=off" in k.status()["policy"]["text"]
        # A target calling rand() 150 times and writing 5 times lives; the
        # writes prove the killer watched it, and the same killer still kills.
        res = K.work("rand", 150, prog=K.WORK)
        assert res.ok, res.describe()
        with K.sleeper("write", 5) as w:
            assert w.wait_state(K.S_SLEEPING)
            k.wait_samples(1)
            p = [p for p in k.status()["processes"] if p["pid"] == w.pid]
            assert p and p[0]["counters"]["writes"] == 5
        assert K.work("write", 150).killed
        s = series(prom_file.read_text())
        assert s['oomkiller_rule_enabled{rule="rand"}'] == 0
        assert 'oomkiller_rule_limit{rule="rand"}' not in s
        assert 'oomkiller_info' in "".join(s)
