"""Writes are writes to files, not to sockets (issue 9): sends on a socket
are the TCP rule's business, whatever the call. Default policy, gate open."""
import killer as K


def test_udp_write_on_a_connected_socket_is_no_write(default_killer):
    res = K.work("udp-send", 3000, "--via", "write", "-c", 16)
    assert res.ok, f"3000 UDP write()s must live: {res.describe()}"
    assert res.done == 3000, res.describe()
    assert not default_killer.find_events(pid=res.pid)


def test_tcp_writes_below_the_packet_limit_live(default_killer):
    res = K.work("tcp-send", 150, "--via", "write", "--nodelay", "-c", 16)
    assert res.ok, f"150 TCP write()s are 150 packets, not writes: {res.describe()}"
    assert not default_killer.find_events(pid=res.pid)


def test_tcp_writes_die_by_the_packet_rule(default_killer):
    res = K.work("tcp-send", 1000, "--via", "write", "--nodelay", "-c", 16)
    if "tcp-packets" in default_killer.rules_off:
        # Debian 12's 6.1 (no sock_send_length): the rule is off, and the
        # 1000 socket writes are still no writes.
        assert res.ok and res.done == 1000, res.describe()
        assert not default_killer.find_events(pid=res.pid)
        return
    assert res.killed, f"1000 TCP write()s must die: {res.describe()}"
    ev = default_killer.wait_event(pid=res.pid, kind="kill")
    assert ev is not None, f"no kill event for {res.pid}: {default_killer.events[-5:]}"
    assert K.rule_key(ev["rule"]) == K.rule_key("tcp-packets"), ev
    assert ev["value"] == 1000, ev
    assert res.done == 999, res.describe()
