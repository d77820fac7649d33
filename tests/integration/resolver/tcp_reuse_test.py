"""Upstream TCP connections are reused (issue 13, "also"; RFC 7766 section 6.2.1). Four scripted
servers answer every UDP query truncated (TC=1, no records), so each question goes to them over
TCP, and count the connections they accept and the queries on each:
  keep.test.  keeps its connections open and answers every query on them; names starting with
              "slow" are answered 300 ms late, the rest at once (out of order when pipelined);
  once.test.  answers one query per connection, then closes it (names starting with "slow"
              300 ms late);
  idle.test.  closes a connection after 0.5 s without a query (an idle timeout shorter than the
              resolver's own);
  race.test.  answers the first query on a connection; the second one it reads and closes the
              connection without an answer (the server's idle close crossing the next query).
The outpost binary is the resolver (one worker, /metrics for the reuse counters)."""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

OUTPOST = sys.argv.pop(1)

import dnsfixture  # noqa: E402
import harness  # noqa: E402
from dnsfixture import Query, rr, zone_reply  # noqa: E402
from dnsserver import OutpostResolver, section, status  # noqa: E402

KEEP, ONCE, IDLE, RACE = "127.0.0.71", "127.0.0.72", "127.0.0.73", "127.0.0.74"
SERVERS = {"keep": KEEP, "once": ONCE, "idle": IDLE, "race": RACE}
EXTRA_ZONES = {"127.0.0.3": {"test.": "".join(
    "%s.test. 3600 IN NS ns.%s.test.\nns.%s.test. 3600 IN A %s\n" % (z, z, z, a) for z, a in SERVERS.items())}}


def address_for(name):
    """The A record a scripted server gives NAME: 192.0.2.N, N from the name, so an answer that
    went to the wrong question shows."""
    return "192.0.2.%d" % (sum(name.encode()) % 200 + 1)


def read_exactly(c, n):
    data = b""
    while len(data) < n:
        more = c.recv(n - len(data))
        if not more:
            return None
        data += more
    return data


class TcpServer(threading.Thread):
    """A scripted server for ZONE on ADDR:53 in MODE (above). UDP: TC=1 for everything. TCP: a
    thread per connection; `connections` lists, per accepted connection, the names asked on it."""

    def __init__(self, addr, zone, mode):
        super().__init__(daemon=True)
        self.zone, self.mode = zone, mode
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((addr, 53))
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((addr, 53))
        self.tcp.listen(64)
        self.lock = threading.Lock()
        self.connections = []
        self.in_flight = 0       # queries read and not yet answered, all connections
        self.max_in_flight = {}  # connection index -> most queries waiting on it at once
        self.order = []          # names in the order their answers left
        self.stopping = False

    def answer(self, q):
        if q.type == 1 and q.name.endswith("." + self.zone) and q.name != "ns." + self.zone:
            return q.reply(answer=[rr(q.name, "A", 300, address_for(q.name))])
        return zone_reply(q, self.zone)

    def run(self):
        threading.Thread(target=self._udp, daemon=True).start()
        while not self.stopping:
            try:
                c, _ = self.tcp.accept()
            except OSError:
                return
            with self.lock:
                self.connections.append([])
                index = len(self.connections) - 1
            threading.Thread(target=self._serve, args=(c, index), daemon=True).start()

    def _udp(self):
        while not self.stopping:
            try:
                data, peer = self.udp.recvfrom(65535)
            except OSError:
                return
            if len(data) > 12:
                flags = 0x8000 | 0x0400 | 0x0200 | (0x0100 if data[2] & 1 else 0)
                q = Query(data)
                self.udp.sendto(data[:2] + struct.pack("!HHHHH", flags, 1, 0, 0, 0) + q.question, peer)

    def _serve(self, c, index):
        send_lock = threading.Lock()
        waiting = [0]

        def send(q, delay):
            time.sleep(delay)
            out = self.answer(q)
            with send_lock:
                try:
                    c.sendall(struct.pack("!H", len(out)) + out)
                except OSError:
                    return
            with self.lock:
                self.order.append(q.name)
                waiting[0] -= 1
            if self.mode == "once":
                self._close(c)

        c.settimeout(0.5 if self.mode == "idle" else 30)
        try:
            while not self.stopping:
                head = read_exactly(c, 2)
                if head is None:
                    break
                q = Query(read_exactly(c, struct.unpack("!H", head)[0]))
                with self.lock:
                    self.connections[index].append(q.name)
                    asked = len(self.connections[index])
                    waiting[0] += 1
                    self.max_in_flight[index] = max(self.max_in_flight.get(index, 0), waiting[0])
                if self.mode == "once" and asked > 1:
                    continue  # read after the close began: never answered
                if self.mode == "race" and asked == 2:
                    break
                delay = 0.3 if q.name.startswith("slow") else 0
                threading.Thread(target=send, args=(q, delay), daemon=True).start()
        except (OSError, TypeError, struct.error):
            pass  # socket.timeout (idle), a reset, or a half-read query
        time.sleep(0.35 if self.mode == "keep" else 0)  # late answers still go out
        self._close(c)
        c.close()

    def _close(self, c):
        try:
            c.shutdown(socket.SHUT_WR)  # FIN after the answers already sent
        except OSError:
            pass

    def names_per_connection(self):
        with self.lock:
            return [list(c) for c in self.connections]

    def stop(self):
        self.stopping = True
        self.udp.close()
        self.tcp.close()


def close_wait_sockets(addr):
    """TCP sockets in CLOSE-WAIT towards ADDR:53: connections the server closed and this side
    still holds."""
    out = subprocess.run(["ss", "-Htn", "state", "close-wait", "dst", addr + ":53"], capture_output=True,
                         text=True, check=True).stdout
    return [l for l in out.splitlines() if l.strip()]


class TcpReuseTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not harness.in_private_netns():
            raise RuntimeError("run through netns_run.sh")
        cls.tmp = tempfile.mkdtemp(prefix="TcpReuseTest-")
        cls.procs = harness.Processes()
        cls.h = dnsfixture.Hierarchy(os.path.join(cls.tmp, "dns"), extra_zones=EXTRA_ZONES)
        cls.h.start()
        cls.servers = {z: TcpServer(a, z + ".test.", z) for z, a in SERVERS.items()}
        for s in cls.servers.values():
            s.start()
        cls.r = OutpostResolver(OUTPOST, cls.procs, os.path.join(cls.tmp, "outpost"), cls.h.write_hints(), 53, 9145,
                                3128)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.r.stop()
        finally:
            cls.procs.stop_all()
            for s in cls.servers.values():
                s.stop()
            cls.h.stop()
            cls.h.cleanup()

    def counters(self):
        return {k: self.r.metric("outpost_dns_upstream_" + k + "_total")
                for k in ("tcp_connections", "tcp_reused", "tcp_retries")}

    def delta(self, before):
        after = self.counters()
        return {k: after[k] - before[k] for k in after}

    def resolve(self, name):
        out = self.r.dig(name, "A")
        if status(out) != "NOERROR":
            # What the resolver logged (debug: SERVFAIL reasons, connections lost).
            out += "".join(l for l in self.r.outpost.log_text().splitlines(True) if "dns" in l)
        self.assertEqual(status(out), "NOERROR", out)
        self.assertEqual([r[4] for r in section(out, "ANSWER")], [address_for(name)], out)

    def resolve_all_at_once(self, names):
        errors = []

        def one(n):
            try:
                self.resolve(n)
            except AssertionError as e:
                errors.append(e)
        threads = [threading.Thread(target=one, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])

    def test_queries_one_after_another_share_one_connection(self):
        keep, before = self.servers["keep"], self.counters()
        opened = len(keep.names_per_connection())
        names = ["seq%d.keep.test." % i for i in range(10)]
        for n in names:
            self.resolve(n)
        conns = keep.names_per_connection()
        # Ten questions over TCP, one connection (at most one if an earlier test left none idle).
        self.assertLessEqual(len(conns) - opened, 1, conns)
        carriers = [[n for n in c if n in names] for c in conns if set(names) & set(c)]
        self.assertEqual(carriers, [names], conns)
        d = self.delta(before)
        self.assertLessEqual(d["tcp_connections"], 1, d)
        self.assertGreaterEqual(d["tcp_reused"], 9, d)
        self.assertEqual(d["tcp_retries"], 0, d)
        self.assertGreaterEqual(self.r.metric("outpost_dns_upstream_tcp_idle_connections"), 1)

    def test_pipelined_queries_answered_out_of_order(self):
        keep, before = self.servers["keep"], self.counters()
        opened = len(keep.names_per_connection())
        names = ["slow%d.keep.test." % i for i in range(4)] + ["fast%d.keep.test." % i for i in range(4)]
        self.resolve_all_at_once(names)
        conns = keep.names_per_connection()
        self.assertLessEqual(len(conns) - opened, 1, conns)
        carrier = [i for i, c in enumerate(conns) if set(names) & set(c)]
        self.assertEqual(len(carrier), 1, conns)
        # Several questions waited on that connection at once, and the fast ones overtook.
        self.assertGreaterEqual(keep.max_in_flight[carrier[0]], 2)
        answered = [n for n in keep.order if n in names]
        self.assertTrue(answered[0].startswith("fast") and answered[-1].startswith("slow"), answered)
        self.assertEqual(self.delta(before)["tcp_retries"], 0)

    def test_server_closing_after_each_answer(self):
        once, before = self.servers["once"], self.counters()
        for i in range(5):
            self.resolve("seq%d.once.test." % i)
        # Each close was seen while the connection was idle: a new one each time, no retry.
        self.assertEqual([len(c) for c in once.names_per_connection()], [1] * 5)
        self.assertEqual(self.delta(before)["tcp_retries"], 0)
        self.assertEqual(close_wait_sockets(ONCE), [])
        # At once: they share a connection (the first answer takes 300 ms, so the others find
        # it busy and join it), the server answers one and closes it, every other question is
        # sent again on a connection of its own (once) and answered there.
        names = ["slow%d.once.test." % i for i in range(5)]
        self.resolve_all_at_once(names)
        d = self.delta(before)
        self.assertGreaterEqual(d["tcp_retries"], 1, d)
        self.assertLessEqual(d["tcp_retries"], 4, d)
        self.assertEqual(close_wait_sockets(ONCE), [])

    def test_server_closing_idle_connections(self):
        idle, before = self.servers["idle"], self.counters()
        self.resolve("first.idle.test.")
        time.sleep(1)  # the server's 0.5 s idle timeout passes
        self.assertEqual(close_wait_sockets(IDLE), [], "a connection the server closed is still held")
        self.resolve("second.idle.test.")
        self.assertEqual(idle.names_per_connection(), [["first.idle.test."], ["second.idle.test."]])
        d = self.delta(before)
        self.assertEqual((d["tcp_connections"], d["tcp_retries"]), (2, 0), d)

    def test_query_crossing_the_servers_close_is_retried_once(self):
        race, before = self.servers["race"], self.counters()
        self.resolve("one.race.test.")
        self.resolve("two.race.test.")  # reuses the connection; the server closes it unanswered
        self.resolve("three.race.test.")
        self.assertEqual(race.names_per_connection(),
                         [["one.race.test.", "two.race.test."], ["two.race.test.", "three.race.test."],
                          ["three.race.test."]])
        d = self.delta(before)
        self.assertEqual((d["tcp_connections"], d["tcp_reused"], d["tcp_retries"]), (3, 2, 2), d)


if __name__ == "__main__":
    unittest.main(verbosity=2)
