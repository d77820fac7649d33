"""A zone's only server losing datagrams under load (issue 13: the bench's cold signed runs at
100 in flight answered a few dozen of 20,000 names SERVFAIL on a loaded machine, Unbound none).
lossy.test.'s one server (scripted, 127.0.0.56) drops the first datagram of every name it has
not seen (names s*), or the first two (names l*), and answers everything else at once.

  - A silence shared by the queries in flight: 20 names asked together, each first datagram
    lost, so 20 queries sent together time out together. They count as one timeout, not as
    the server's death (two timeouts in a row used to mark it dead and SERVFAIL the rest).
  - Losses among replies: l* names lose two datagrams while the server answers a steady flow
    of other names. The server is alive, so the query asks it again with a doubled wait
    instead of giving up after max_rounds (2) tries at an RTO such losses never raise.
Asserted on rcodes and on how many datagrams each name took; no time is asserted."""
import socket
import struct
import sys
import threading
import unittest

import dnsfixture
from dnsfixture import ScriptedServer, rr, zone_reply
from dnsserver import DnsServer

DNS_SERVER = sys.argv.pop(1)
LOSSY = "127.0.0.56"
EXTRA_ZONES = {"127.0.0.3": {"test.": "lossy.test. 3600 IN NS ns.lossy.test.\nns.lossy.test. 3600 IN A %s\n" % LOSSY}}


class Lossy:
    def __init__(self):
        self.lock = threading.Lock()
        self.seen = {}

    def __call__(self, q):
        if q.type == dnsfixture.TYPES["A"] and q.name.endswith(".lossy.test.") and q.name != "ns.lossy.test.":
            with self.lock:
                n = self.seen[q.name] = self.seen.get(q.name, 0) + 1
            drops = 2 if q.name.startswith("l") else 1 if q.name.startswith("s") else 0
            if n <= drops:
                return None
            return q.reply(answer=[rr(q.name, "A", 300, "192.0.2.77")])
        return zone_reply(q, "lossy.test.")


def ask_raw(sock, name, qid):
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l.encode() for l in name.strip(".").split(".")) + b"\0" + struct.pack("!HH", 1, 1)
    sock.sendto(q, ("127.0.0.1", 53))


class LossyServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = dnsfixture.Hierarchy(extra_zones=EXTRA_ZONES)
        cls.h.start()
        cls.lossy = Lossy()
        cls.scripted = ScriptedServer(LOSSY, cls.lossy)
        cls.scripted.start()
        cls.server = DnsServer(DNS_SERVER, cls.h.workdir, "main", cls.h.write_hints(), extra="servfail_ttl = 0\n")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.scripted.stop()
        cls.h.stop()
        cls.h.cleanup()

    def ask_together(self, names):
        """Sends one query per name at once from one socket; {name: (rcode, answer count)}."""
        got = {}
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(15)
            for i, n in enumerate(names):
                ask_raw(s, n, 0x8000 + i)
            while len(got) < len(names):
                try:
                    data = s.recv(65535)
                except socket.timeout:
                    break
                qid, flags, _, ancount = struct.unpack("!HHHH", data[:8])
                if 0x8000 <= qid < 0x8000 + len(names):
                    got[names[qid - 0x8000]] = (flags & 0xF, ancount)
        return got

    def check(self, got, names, datagrams):
        for name in names:
            with self.subTest(name=name):
                self.assertEqual(got.get(name), (0, 1), "rcode, answers (no reply: None)")
                self.assertEqual(self.lossy.seen[name + "."], datagrams)

    def test_one_silence_for_every_query_in_flight(self):
        names = [f"s{i}.lossy.test" for i in range(20)]
        self.check(self.ask_together(names), names, 2)

    def test_lost_datagrams_among_replies(self):
        # A steady flow of other names, answered at once, while the l* names lose two datagrams.
        stop = threading.Event()

        def flow():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                i = 0
                while not stop.wait(0.005):
                    ask_raw(s, f"b{i}.lossy.test", i & 0xFFFF)
                    i += 1
        t = threading.Thread(target=flow)
        t.start()
        try:
            names = [f"l{i}.lossy.test" for i in range(5)]
            got = self.ask_together(names)
        finally:
            stop.set()
            t.join()
        self.check(got, names, 3)


if __name__ == "__main__":
    unittest.main()
