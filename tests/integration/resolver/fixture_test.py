"""The fake DNS hierarchy itself works: each level answers what the resolver tests rely on."""
import subprocess
import unittest

import dnsfixture


def dig(server, *args):
    out = subprocess.run(["dig", "@" + server, "+norec", "+time=2", "+tries=1"] + list(args),
                         capture_output=True, text=True, check=False).stdout
    return out


class FixtureTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = dnsfixture.Hierarchy()
        cls.h.start()

    @classmethod
    def tearDownClass(cls):
        cls.h.stop()
        cls.h.cleanup()

    def test_root_refers_to_tld_with_glue(self):
        out = dig(dnsfixture.ROOT_ADDR, "www.a.test")
        self.assertIn("test.\t\t\t86400\tIN\tNS\tns1.test.", out)
        self.assertIn("ns1.test.\t\t86400\tIN\tA\t127.0.0.3", out)

    def test_leaf_answers_authoritatively(self):
        out = dig("127.0.0.5", "www.a.test")
        self.assertIn("flags: qr aa;", out)
        self.assertIn("192.0.2.1", out)

    def test_big_answer_is_truncated_over_udp(self):
        self.assertIn(" tc;", dig("127.0.0.5", "big.test", "TXT", "+bufsize=1232", "+ignore"))

    def test_relay_counts(self):
        before = self.h.relay.count("short.count.test")
        self.assertIn("192.0.2.8", dig(dnsfixture.RELAY_ADDR, "short.count.test"))
        self.assertEqual(self.h.relay.count("short.count.test"), before + 1)

    def test_nxdomain_has_short_soa_minimum(self):
        out = dig("127.0.0.5", "nx.a.test")
        self.assertIn("status: NXDOMAIN", out)
        self.assertIn("SOA\tns1.a.test. admin.a.test. 1 3600 600 86400 2", out)

    def test_silent_server_never_answers(self):
        self.assertIn("timed out", dig(dnsfixture.SILENT_ADDR, "www.slow.test", "+time=1"))


if __name__ == "__main__":
    unittest.main()
