"""DS records live in the parent zone (issue 13, defect 5; RFC 4035 section 3.1.4.1): a DS
question goes to the parent's servers even when the child's NS set is cached. count.test.'s
server sits behind the fixture's counting relay, so a DS question sent to the child shows."""
import subprocess
import sys
import unittest

import dnsfixture
from dnsserver import DnsServer, answers, section, status

DNS_SERVER = sys.argv.pop(1)
DNS_QUERY = sys.argv.pop(1)
DS = 43


class DsParentTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = dnsfixture.Hierarchy()
        cls.h.start()
        cls.hints = cls.h.write_hints()
        cls.server = DnsServer(DNS_SERVER, cls.h.workdir, "main", cls.hints)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.h.stop()
        cls.h.cleanup()

    def test_ds_asked_of_the_parent_once_the_child_is_cached(self):
        self.assertEqual(answers(self.server.dig("long.count.test"))[0][4], "192.0.2.9")
        self.assertEqual(answers(self.server.dig("count.test", "NS"))[0][4], "ns.count.test.")
        out = self.server.dig("count.test", "DS")
        self.assertEqual(status(out), "NOERROR")
        self.assertEqual([(r[0], r[3]) for r in section(out, "AUTHORITY")], [("test.", "SOA")], out)
        self.assertEqual(self.h.relay.count("count.test", DS), 0)

    def test_cold_ds_question_walks_to_the_parent_only(self):
        p = subprocess.run([DNS_QUERY, "--hints", self.hints, "--trace", "a.test", "DS"], capture_output=True,
                           text=True, timeout=30)
        self.assertIn("nodata: a.test. DS from 127.0.0.3#53", p.stdout)
        self.assertNotIn("127.0.0.5", p.stdout)
        self.assertIn("status: NOERROR", p.stdout)


if __name__ == "__main__":
    unittest.main()
