"""Answers from delegated servers must be authoritative (issue 13, defect 4). A server that
answers like a recursive resolver (AA=0, RA=1, an answer it has no authority for) is lame: it
is marked so and the next server is asked; its answer is never given or cached. rec.test. has
one good server and one such recursor (each cold start picks one first at random);
reconly.test. has only the recursor."""
import subprocess
import sys
import unittest

import dnsfixture
from dnsfixture import ScriptedServer, rr
from dnsserver import DnsServer, answers, status

DNS_SERVER = sys.argv.pop(1)
DNS_QUERY = sys.argv.pop(1)
GOOD = "127.0.0.45"       # NSD: rec.test.
RECURSOR = "127.0.0.46"   # scripted: answers everything, AA=0 RA=1
POISON = "6.6.6.6"

EXTRA_ZONES = {
    "127.0.0.3": {"test.": """
rec.test. 3600 IN NS ns1.rec.test.
rec.test. 3600 IN NS ns2.rec.test.
ns1.rec.test. 3600 IN A %s
ns2.rec.test. 3600 IN A %s
reconly.test. 3600 IN NS ns.reconly.test.
ns.reconly.test. 3600 IN A %s
""" % (GOOD, RECURSOR, RECURSOR)},
    GOOD: {"rec.test.": dnsfixture.SOA.format(z="rec.test.", minimum=60) + """
rec.test. 300 IN NS ns1.rec.test.
rec.test. 300 IN NS ns2.rec.test.
ns1.rec.test. 300 IN A %s
ns2.rec.test. 300 IN A %s
www.rec.test. 300 IN A 192.0.2.60
""" % (GOOD, RECURSOR)},
}


def recursor(q):
    """What a recursive resolver with a poisoned cache would answer, recursion available."""
    if q.type == 1:
        return q.reply(answer=[rr(q.name, "A", 3600, POISON)], aa=False, ra=True)
    return q.reply(aa=False, ra=True)


class LameTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = dnsfixture.Hierarchy(extra_zones=EXTRA_ZONES)
        cls.h.start()
        cls.hints = cls.h.write_hints()
        cls.recursor = ScriptedServer(RECURSOR, recursor)
        cls.recursor.start()

    @classmethod
    def tearDownClass(cls):
        cls.recursor.stop()
        cls.h.stop()
        cls.h.cleanup()

    def query(self, *args):
        return subprocess.run([DNS_QUERY, "--hints", self.hints] + list(args), capture_output=True, text=True,
                              timeout=30).stdout

    def test_recursor_like_answer_never_believed_on_cold_starts(self):
        # Each cold start picks a server at random: go on until the recursor has been asked at
        # least once (eight fixed starts missed it one time in 2^8), at most 64 starts.
        for i in range(64):
            if i >= 8 and self.recursor.count("www.rec.test") > 0:
                break
            out = self.query("--trace", "www.rec.test")
            self.assertIn("status: NOERROR", out)
            answer = out.split(";; ANSWER SECTION:\n", 1)[1]
            self.assertIn("www.rec.test.\t300\tIN\tA\t192.0.2.60", answer)
            self.assertNotIn(POISON, answer)
        self.assertGreater(self.recursor.count("www.rec.test"), 0)  # it was asked, and not believed

    def test_zone_served_only_by_a_recursor_fails(self):
        out = self.query("www.reconly.test")
        self.assertIn("status: SERVFAIL", out)
        self.assertNotIn(POISON, out)

    def test_server_never_caches_the_recursors_answer(self):
        s = DnsServer(DNS_SERVER, self.h.workdir, "main", self.hints)
        self.addCleanup(s.stop)
        self.assertEqual(status(s.dig("www.reconly.test")), "SERVFAIL")
        self.assertNotIn(POISON, s.dig("www.reconly.test", "+norec"))
        for _ in range(3):
            out = s.dig("www.rec.test")
            self.assertEqual([r[4] for r in answers(out)], ["192.0.2.60"])


if __name__ == "__main__":
    unittest.main()
