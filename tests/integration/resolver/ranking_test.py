"""Parent-side data is never an answer (issue 13, defect 3; RFC 2181 section 5.4.1). Glue and
the other records of a referral's additional section, and the parent's copy of a child's NS set,
are used only to reach the child: a parent that slips "www.child A 6.6.6.6" into a referral
must not answer for the child, and "NS"/"A" questions about a delegation get the child's own
records with the child's TTLs."""
import sys
import unittest

import dnsfixture
from dnsfixture import ScriptedServer, rr
from dnsserver import DnsServer, answers, section, status

DNS_SERVER = sys.argv.pop(1)
PARENT = "127.0.0.43"   # scripted: evil.test., whose referrals to child.evil.test. carry bait
CHILD = "127.0.0.44"    # NSD: child.evil.test.
POISON = "6.6.6.6"

EXTRA_ZONES = {
    "127.0.0.3": {"test.": "evil.test. 3600 IN NS ns.evil.test.\nns.evil.test. 3600 IN A %s\n" % PARENT},
    CHILD: {"child.evil.test.": dnsfixture.SOA.format(z="child.evil.test.", minimum=60) + """
child.evil.test. 300 IN NS ns.child.evil.test.
ns.child.evil.test. 300 IN A %s
www.child.evil.test. 300 IN A 192.0.2.50
other.child.evil.test. 300 IN A 192.0.2.51
""" % CHILD},
}


def evil_parent(q):
    soa = rr("evil.test.", "SOA", 3600, ("ns.evil.test.", "admin.evil.test.", 60))
    if q.name == "child.evil.test." or q.name.endswith(".child.evil.test."):
        return q.reply(authority=[rr("child.evil.test.", "NS", 3600, "ns.child.evil.test.")],
                       additional=[rr("ns.child.evil.test.", "A", 3600, CHILD),
                                   rr("www.child.evil.test.", "A", 3600, POISON)], aa=False)
    if q.name == "evil.test." and q.type == 2:
        return q.reply(answer=[rr("evil.test.", "NS", 3600, "ns.evil.test.")],
                       additional=[rr("ns.evil.test.", "A", 3600, PARENT)])
    if q.name in ("evil.test.", "ns.evil.test."):
        return q.reply(authority=[soa])
    return q.reply(authority=[soa], rcode=3)


class RankingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = dnsfixture.Hierarchy(extra_zones=EXTRA_ZONES)
        cls.h.start()
        cls.parent = ScriptedServer(PARENT, evil_parent)
        cls.parent.start()
        cls.server = DnsServer(DNS_SERVER, cls.h.workdir, "main", cls.h.write_hints())

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.parent.stop()
        cls.h.stop()
        cls.h.cleanup()

    def test_records_slipped_into_a_referral_are_never_answers(self):
        out = self.server.dig("other.child.evil.test")  # the referral with the bait is seen here
        self.assertEqual(answers(out)[0][4], "192.0.2.51")
        self.assertTrue(self.parent.counts)
        out = self.server.dig("www.child.evil.test", "+norec")  # nothing for it in the cache
        self.assertNotIn(POISON, out)
        out = self.server.dig("www.child.evil.test")
        self.assertEqual(status(out), "NOERROR")
        self.assertEqual([r[4] for r in section(out, "ANSWER")], ["192.0.2.50"])

    def test_ns_and_address_questions_get_the_childs_own_records(self):
        self.assertEqual(answers(self.server.dig("www.a.test"))[0][4], "192.0.2.1")
        # The parent (test.) gave a.test. NS and ns1.a.test. A with TTL 3600; the child's own
        # records have 300.
        out = self.server.dig("a.test", "NS")
        rows = section(out, "ANSWER")
        self.assertEqual([(r[0], r[3], r[4]) for r in rows], [("a.test.", "NS", "ns1.a.test.")], out)
        self.assertLessEqual(int(rows[0][1]), 300)
        rows = section(self.server.dig("ns1.a.test", "A"), "ANSWER")
        self.assertEqual(rows[0][4], "127.0.0.5")
        self.assertLessEqual(int(rows[0][1]), 300)

    def test_childs_ns_set_still_used_as_delegation(self):
        self.assertEqual(answers(self.server.dig("child.evil.test", "NS"))[0][4], "ns.child.evil.test.")
        self.assertEqual(answers(self.server.dig("www.child.evil.test", "A"))[0][4], "192.0.2.50")


if __name__ == "__main__":
    unittest.main()
