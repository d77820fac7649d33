"""QNAME minimisation meets servers that answer empty non-terminals wrongly (issue 13, defect 6;
RFC 9156 section 4.3). qmin.test. is served by a scripted server: a.b.qmin.test. and
x.c.qmin.test. exist, but the server answers SERVFAIL for the empty non-terminal b.qmin.test.,
REFUSED for d.qmin.test. and NXDOMAIN for c.qmin.test. (an RFC 8020 violation).

By default (as Unbound), an error or an NXDOMAIN for a minimised name is asked again with the
full name. With qname_minimisation_strict, NXDOMAIN ends the resolution (RFC 8020) and errors are
not retried."""
import subprocess
import sys
import unittest

import dnsfixture
from dnsfixture import ScriptedServer, rr, zone_reply
from dnsserver import DnsServer, section, status

DNS_SERVER = sys.argv.pop(1)
DNS_QUERY = sys.argv.pop(1)
QMIN_SERVER = "127.0.0.51"

EXTRA_ZONES = {
    "127.0.0.3": {"test.": "qmin.test. 3600 IN NS ns.qmin.test.\nns.qmin.test. 3600 IN A %s\n" % QMIN_SERVER},
}
DATA = {"a.b.qmin.test.": "192.0.2.70", "x.c.qmin.test.": "192.0.2.71", "y.d.qmin.test.": "192.0.2.72"}
BROKEN = {"b.qmin.test.": 2, "c.qmin.test.": 3, "d.qmin.test.": 5}


def qmin_server(q):
    if q.name in BROKEN:
        if BROKEN[q.name] == 3:
            return zone_reply(q, "qmin.test.")  # NXDOMAIN
        return q.reply(rcode=BROKEN[q.name])
    if q.name in DATA and q.type == 1:
        return q.reply(answer=[rr(q.name, "A", 300, DATA[q.name])])
    return zone_reply(q, "qmin.test.", DATA)


class QminFallbackTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = dnsfixture.Hierarchy(extra_zones=EXTRA_ZONES)
        cls.h.start()
        cls.hints = cls.h.write_hints()
        cls.scripted = ScriptedServer(QMIN_SERVER, qmin_server)
        cls.scripted.start()
        cls.server = DnsServer(DNS_SERVER, cls.h.workdir, "main", cls.hints)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.scripted.stop()
        cls.h.stop()
        cls.h.cleanup()

    def query(self, *args):
        return subprocess.run([DNS_QUERY, "--hints", self.hints] + list(args), capture_output=True, text=True,
                              timeout=30).stdout

    def test_fallback_to_full_name(self):
        for name, address in sorted(DATA.items()):
            before = self.scripted.count(name)
            out = self.server.dig(name)
            self.assertEqual(status(out), "NOERROR", name)
            self.assertEqual([r[4] for r in section(out, "ANSWER")], [address])
            self.assertEqual(self.scripted.count(name), before + 1)  # the full name, asked once
        for ent in BROKEN:
            self.assertGreater(self.scripted.count(ent), 0)  # minimisation was on

    def test_strict_stops_at_nxdomain_and_errors(self):
        self.assertIn("status: NXDOMAIN", self.query("--qmin-strict", "x.c.qmin.test"))
        self.assertIn("status: SERVFAIL", self.query("--qmin-strict", "a.b.qmin.test"))
        self.assertIn("status: SERVFAIL", self.query("--qmin-strict", "y.d.qmin.test"))
        # Without the switch the same tool finds them.
        self.assertIn("192.0.2.71", self.query("x.c.qmin.test"))
        self.assertIn("192.0.2.70", self.query("a.b.qmin.test"))


if __name__ == "__main__":
    unittest.main()
