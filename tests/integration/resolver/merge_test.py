"""Identical upstream questions in flight are merged (issue 13, "also"): twenty clients ask the
same cold name at once; the server of merge.test. answers after 300 ms, so all twenty
resolutions are waiting for it at the same time. One query reaches it, and every client gets the
answer."""
import socket
import struct
import sys
import threading
import unittest

import dnsfixture
from dnsfixture import Query, rr, zone_reply
from dnsserver import DnsServer

DNS_SERVER = sys.argv.pop(1)
SLOW = "127.0.0.57"
CLIENTS = 20

EXTRA_ZONES = {
    "127.0.0.3": {"test.": "merge.test. 3600 IN NS ns.merge.test.\nns.merge.test. 3600 IN A %s\n" % SLOW},
}


class SlowServer(threading.Thread):
    """merge.test.: every answer leaves 300 ms after its query came; counts queries per name."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((SLOW, 53))
        self.counts = {}
        self.lock = threading.Lock()

    def answer(self, q):
        if q.name == "www.merge.test." and q.type == 1:
            return q.reply(answer=[rr(q.name, "A", 300, "192.0.2.77")])
        return zone_reply(q, "merge.test.", ["www.merge.test."])

    def run(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(65535)
            except OSError:
                return
            q = Query(data)
            with self.lock:
                self.counts[(q.name, q.type)] = self.counts.get((q.name, q.type), 0) + 1
            threading.Timer(0.3, self.reply, (self.answer(q), peer)).start()

    def reply(self, data, peer):
        try:
            self.sock.sendto(data, peer)
        except OSError:
            pass

    def stop(self):
        self.sock.close()


class MergeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = dnsfixture.Hierarchy(extra_zones=EXTRA_ZONES)
        cls.h.start()
        cls.slow = SlowServer()
        cls.slow.start()
        cls.server = DnsServer(DNS_SERVER, cls.h.workdir, "main", cls.h.write_hints())

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.slow.stop()
        cls.h.stop()
        cls.h.cleanup()

    def test_simultaneous_identical_questions_make_one_upstream_query(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(10)
            for i in range(CLIENTS):
                q = struct.pack("!HHHHHH", 1000 + i, 0x0100, 1, 0, 0, 0) + dnsfixture.encode_name("www.merge.test")
                s.sendto(q + struct.pack("!HH", 1, 1), ("127.0.0.1", 53))
            ids = set()
            for _ in range(CLIENTS):
                reply = s.recvfrom(65535)[0]
                self.assertEqual(reply[3] & 0x0F, 0)  # NOERROR
                self.assertEqual(struct.unpack("!H", reply[6:8])[0], 1)  # one answer
                self.assertIn(socket.inet_aton("192.0.2.77"), reply)
                ids.add(struct.unpack("!H", reply[:2])[0])
        self.assertEqual(len(ids), CLIENTS)
        self.assertEqual(self.slow.counts.get(("www.merge.test.", 1)), 1)


if __name__ == "__main__":
    unittest.main()
