"""Iterative resolution against the fake hierarchy, through the dns_query driver (one process
per resolution, cold cache): referrals, QNAME minimisation, glue rules, CNAME chains across
zones, negative answers, TC -> TCP, fallback past a silent server, spoofed answers ignored."""
import subprocess
import sys
import unittest

import dnsfixture

DNS_QUERY = sys.argv.pop(1)


class IteratorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = dnsfixture.Hierarchy()
        cls.h.start()
        cls.hints = cls.h.write_hints()

    @classmethod
    def tearDownClass(cls):
        cls.h.stop()
        cls.h.cleanup()

    def query(self, *args):
        p = subprocess.run([DNS_QUERY, "--hints", self.hints] + list(args), capture_output=True, text=True, timeout=30)
        return p.stdout

    def answer_section(self, out):
        return out.split(";; ANSWER SECTION:\n", 1)[1]

    def test_walks_root_tld_leaf_with_qname_minimisation(self):
        out = self.query("--trace", "www.a.test", "AAAA")
        steps = [l for l in out.splitlines() if l.startswith(";; NOERROR")]
        self.assertEqual(len(steps), 4, out)
        # Priming (RFC 8109) first; then the root is asked only for test. and the TLD only for
        # a.test. (RFC 9156), type A.
        self.assertIn("answer: . NS from 127.0.0.2#53", steps[0])
        self.assertIn("referral: test. A from 127.0.0.2#53", steps[1])
        self.assertIn("referral: a.test. A from 127.0.0.3#53", steps[2])
        self.assertIn("answer: www.a.test. AAAA from 127.0.0.5#53", steps[3])
        self.assertIn("www.a.test.\t300\tIN\tAAAA\t2001:db8::1", self.answer_section(out))

    def test_without_minimisation_full_name_goes_to_root(self):
        out = self.query("--trace", "--no-qmin", "www.a.test")
        self.assertIn("referral: www.a.test. A from 127.0.0.2#53", out)

    def test_cname_chain_across_zones_with_glueless_delegation(self):
        out = self.query("chain.a.test")
        ans = self.answer_section(out)
        self.assertIn("chain.a.test.\t300\tIN\tCNAME\twww.b.example.", ans)
        self.assertIn("www.b.example.\t300\tIN\tCNAME\tfinal.a.test.", ans)
        self.assertIn("final.a.test.\t300\tIN\tA\t192.0.2.3", ans)

    def test_nxdomain_with_soa(self):
        out = self.query("nx.a.test")
        self.assertIn("status: NXDOMAIN", out)
        self.assertIn("a.test.\t2\tIN\tSOA", out)

    def test_nxdomain_at_end_of_cname_chain(self):
        out = self.query("dangling.a.test")
        self.assertIn("status: NXDOMAIN", out)
        self.assertIn("dangling.a.test.\t300\tIN\tCNAME\tmissing.a.test.", out)

    def test_nodata(self):
        out = self.query("www.a.test", "MX")
        self.assertIn("status: NOERROR", out)
        self.assertIn("a.test.\t2\tIN\tSOA", out)

    def test_truncated_answer_retried_over_tcp(self):
        out = self.query("--trace", "big.test", "TXT")
        self.assertIn("truncated, retrying over TCP", out)
        self.assertIn("over TCP", out)
        self.assertEqual(self.answer_section(out).count("IN\tTXT"), 10)

    def test_falls_back_past_silent_server(self):
        out = self.query("www.slow.test")
        self.assertIn("www.slow.test.\t300\tIN\tA\t192.0.2.7", self.answer_section(out))

    def test_spoofed_answers_ignored(self):
        before = self.h.spoofer.queries
        out = self.query("www.spoof.test")
        self.assertGreater(self.h.spoofer.queries, before)
        self.assertIn(dnsfixture.GOOD_SPOOF_ANSWER, out)
        self.assertNotIn(dnsfixture.BAD_SPOOF_ANSWER, out)

    def test_cname_loop_is_servfail(self):
        self.assertIn("status: SERVFAIL", self.query("loop1.a.test"))

    def test_nonexistent_tld(self):
        self.assertIn("status: NXDOMAIN", self.query("www.nowhere"))


if __name__ == "__main__":
    unittest.main()
