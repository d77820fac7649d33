"""Alias chains (issue 13, defects 7 and 10).

Defect 7: one limit on CNAME chains (max_cname_chain = 8 links), the same whether the chain came
from upstream or from the cache: a 9-link chain used to be NOERROR the first time and SERVFAIL
once cached; an 8-link chain is answered both times.

Defect 10: DNAME records (RFC 6672) are kept in answers, fresh and cached; a DNAME without the
CNAME it implies is followed (the resolver synthesizes it); a CNAME a hostile server sends
beside its DNAME is not believed, the synthesized one is."""
import sys
import unittest

import dnsfixture
from dnsfixture import ScriptedServer, rr, zone_reply
from dnsserver import DnsServer, section, status

DNS_SERVER = sys.argv.pop(1)
DNAME_SERVER = "127.0.0.50"  # scripted: dname.test.


def chain(prefix, links):
    recs = "".join("%s%d.a.test. 300 IN CNAME %s%d.a.test.\n" % (prefix, i, prefix, i + 1) for i in range(links))
    return recs + "%s%d.a.test. 300 IN A 192.0.2.99\n" % (prefix, links)


EXTRA_ZONES = {
    "127.0.0.5": {"a.test.": chain("eight", 8) + chain("nine", 9) + "dn.a.test. 300 IN DNAME b.example.\n"},
    "127.0.0.3": {"test.": "dname.test. 3600 IN NS ns.dname.test.\nns.dname.test. 3600 IN A %s\n" % DNAME_SERVER},
}


def dname_server(q):
    """dname.test.: x.dname.test. DNAME a.test. sent without its CNAME; y.dname.test. DNAME
    a.test. sent with a CNAME that points elsewhere (txt.a.test.)."""
    owners = ("x.dname.test.", "y.dname.test.")
    for owner in owners:
        if q.name.endswith("." + owner):
            answer = [rr(owner, "DNAME", 300, "a.test.")]
            if owner.startswith("y"):
                answer.append(rr(q.name, "CNAME", 300, "txt.a.test."))
            return q.reply(answer=answer)
    return zone_reply(q, "dname.test.", owners)


class AliasTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = dnsfixture.Hierarchy(extra_zones=EXTRA_ZONES)
        cls.h.start()
        cls.scripted = ScriptedServer(DNAME_SERVER, dname_server)
        cls.scripted.start()
        # servfail_ttl = 0: a failure is never cached, so a second question meets the cached chain.
        cls.server = DnsServer(DNS_SERVER, cls.h.workdir, "main", cls.h.write_hints(), extra="servfail_ttl = 0\n")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.scripted.stop()
        cls.h.stop()
        cls.h.cleanup()

    def test_eight_links_answered_fresh_and_cached(self):
        for _ in range(2):
            out = self.server.dig("eight0.a.test")
            self.assertEqual(status(out), "NOERROR")
            rows = section(out, "ANSWER")
            self.assertEqual([r[3] for r in rows], ["CNAME"] * 8 + ["A"])
            self.assertEqual(rows[-1][4], "192.0.2.99")

    def test_nine_links_fail_fresh_and_cached(self):
        self.assertEqual(status(self.server.dig("nine0.a.test")), "SERVFAIL")
        self.assertEqual(status(self.server.dig("nine0.a.test")), "SERVFAIL")
        # The chain's tail is fine on its own (eight links), and a question whose chain runs
        # through the cached tail fails the same way.
        self.assertEqual(status(self.server.dig("nine1.a.test")), "NOERROR")
        self.assertEqual(status(self.server.dig("nine0.a.test", "+norec")), "SERVFAIL")

    def assert_dname_answer(self, out, owner, qname, target, address):
        self.assertEqual(status(out), "NOERROR", out)
        rows = [(r[0], r[3], r[4]) for r in section(out, "ANSWER")]
        self.assertIn((owner, "DNAME", target), rows)
        self.assertIn((qname, "CNAME", qname.replace(owner, target)), rows)
        self.assertEqual([r[2] for r in rows if r[1] == "A"], [address])

    def test_dname_kept_in_answers_fresh_and_cached(self):
        for _ in range(2):
            out = self.server.dig("host.dn.a.test")
            self.assert_dname_answer(out, "dn.a.test.", "host.dn.a.test.", "b.example.", "192.0.2.4")

    def test_dname_without_cname_followed(self):
        for _ in range(2):
            out = self.server.dig("www.x.dname.test")
            self.assert_dname_answer(out, "x.dname.test.", "www.x.dname.test.", "a.test.", "192.0.2.1")

    def test_cname_beside_dname_not_believed(self):
        out = self.server.dig("www.y.dname.test")
        self.assert_dname_answer(out, "y.dname.test.", "www.y.dname.test.", "a.test.", "192.0.2.1")
        self.assertNotIn("txt.a.test", out)


if __name__ == "__main__":
    unittest.main()
