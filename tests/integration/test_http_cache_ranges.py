#!/usr/bin/env python3
"""Partial content in the cache (RFC 9110 §14, §15.3.7.3; RFC 9111 §3.3-3.4): 206 responses
stored as parts of their object, later ranges inside them served from the cache, parts
joined, gaps filled with Range requests for the missing bytes only, objects completed from
their parts, range_offset_limit; then hostile origins whose partial responses must never be
joined into a corrupt object. Every body served is checked against the origin's bytes."""
import hashlib
import os
import time

import harness as h
from hostile_origin import HostileOrigin
from test_http_cache import parse

HOSTILE_PORT = 8090
LIMIT_PROXY_PORT = 3129


def sha(b):
    return hashlib.sha256(b).hexdigest()


class CacheRanges(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # nginx logs what each request asked for: the tests see which bytes were fetched.
        cls.nginx = h.Nginx(cls.procs, cls.tmp, access_format="$request_uri|$http_range|$http_if_range|$status")
        cls.hostile = HostileOrigin(HOSTILE_PORT)
        cls.outpost = h.Outpost(cls.procs, cls.tmp).start()
        limit_dir = os.path.join(cls.tmp, "limit")
        os.makedirs(limit_dir)
        cls.limited = h.Outpost(cls.procs, limit_dir, port=LIMIT_PROXY_PORT, extra_config=(
            '[http_cache]\nrange_offset_limit = 4194304\n')).start()

    # ---- helpers
    def put(self, name, data):
        path = self.nginx.put_file(name, data)
        old = time.time() - 10 * 86400  # heuristic freshness: a day (10% of ten days)
        os.utime(path, (old, old))
        return f"http://127.0.0.1:{h.NGINX_PORT}/{name}"

    def get(self, url, *headers, proxy=h.PROXY_PORT, check=True):
        args = ["-si"]
        for x in headers:
            args += ["-H", x]
        r = h.curl(*args, url, proxy=proxy, check=check)
        if not check and r.returncode != 0:
            return None
        return parse(r.stdout)

    def ranged(self, url, first, last, *headers, proxy=h.PROXY_PORT):
        return self.get(url, f"Range: bytes={first}-{last}", *headers, proxy=proxy)

    def fetched(self, name):
        """What nginx was asked for `name`: [(range, if_range, status)]."""
        with open(os.path.join(self.tmp, "nginx-access.log")) as f:
            rows = [l.rstrip("\n").split("|") for l in f]
        return [(r[1], r[2], r[3]) for r in rows if r[0] == "/" + name]

    def assert_part(self, resp, data, first, last, hit):
        s, hh, b = resp
        self.assertEqual(s, 206, hh)
        self.assertEqual(hh["content-range"], f"bytes {first}-{last}/{len(data)}")
        self.assertEqual(sha(b), sha(data[first:last + 1]))
        self.assertEqual(int(hh["content-length"]), last - first + 1)
        self.assertEqual(hh["x-cache"].startswith("HIT"), hit, hh)

    # ---- nginx: store, serve, join, fill, complete
    def test_parts_stored_served_joined_filled_and_completed(self):
        data = os.urandom(1 << 20)
        url = self.put("video.bin", data)
        self.assert_part(self.ranged(url, 0, 99999), data, 0, 99999, hit=False)
        # Inside the stored part: from the cache.
        self.assert_part(self.ranged(url, 1000, 5000), data, 1000, 5000, hit=True)
        self.assert_part(self.ranged(url, 0, 99999), data, 0, 99999, hit=True)
        self.assertEqual(len(self.fetched("video.bin")), 1)
        # A range that touches nothing stored goes as sent, and is stored beside the first.
        self.assert_part(self.ranged(url, 200000, 299999), data, 200000, 299999, hit=False)
        self.assertEqual(self.fetched("video.bin")[-1][0], "bytes=200000-299999")
        # Partly stored: only the gap is fetched, under If-Range with the parts' validator.
        s, hh, b = self.ranged(url, 50000, 250000)
        self.assertEqual((s, hh["content-range"], sha(b)), (206, f"bytes 50000-250000/{len(data)}", sha(data[50000:250001])))
        rng, if_range, status = self.fetched("video.bin")[-1]
        self.assertEqual((rng, status), ("bytes=100000-199999", "206"))
        self.assertTrue(if_range.startswith('\\x22'), if_range)  # nginx's strong ETag, its quote escaped
        self.assertIn("fwd=partial", hh["cache-status"])
        # Everything from 0 to 299999 is now one part.
        self.assert_part(self.ranged(url, 0, 299999), data, 0, 299999, hit=True)
        n = len(self.fetched("video.bin"))
        # The rest arrives: the object is complete and becomes an ordinary stored 200.
        s, hh, b = self.get(url, "Range: bytes=300000-")
        self.assertEqual((s, sha(b)), (206, sha(data[300000:])))
        self.assertEqual(len(self.fetched("video.bin")), n + 1)
        s, hh, b = self.get(url)
        self.assertEqual((s, len(b), sha(b)), (200, len(data), sha(data)))
        self.assertTrue(hh["x-cache"].startswith("HIT"), hh)
        self.assertNotIn("detail=parts", hh["cache-status"])
        s, hh, b = self.get(url, "Range: bytes=-10")
        self.assertEqual((s, b), (206, data[-10:]))
        self.assertEqual(len(self.fetched("video.bin")), n + 1)

    def test_several_gaps_fetch_one_span_and_suffix_ranges(self):
        data = os.urandom(5000)
        url = self.put("gaps.bin", data)
        for a, b in ((0, 99), (200, 299), (400, 499)):
            self.assert_part(self.ranged(url, a, b), data, a, b, hit=False)
        s, hh, b = self.ranged(url, 50, 450)
        self.assertEqual((s, sha(b)), (206, sha(data[50:451])))
        self.assertEqual(self.fetched("gaps.bin")[-1][0], "bytes=100-399")
        self.assert_part(self.ranged(url, 0, 499), data, 0, 499, hit=True)
        # A suffix range inside what is stored, once the length is known.
        self.assert_part(self.ranged(url, 4000, 4999), data, 4000, 4999, hit=False)
        s, hh, b = self.get(url, "Range: bytes=-500")
        self.assertEqual((s, b, hh["x-cache"][:3]), (206, data[-500:], "HIT"))
        # Beyond the end: 416 from what is stored.
        s, hh, _ = self.ranged(url, 9000, 9999)
        self.assertEqual((s, hh["content-range"]), (416, "bytes */5000"))
        # "bytes=0-" with the middle missing: one fill, a 206 of all of it, and the object
        # is complete.
        s, hh, b = self.get(url, "Range: bytes=0-")
        self.assertEqual((s, hh["content-range"], sha(b)), (206, "bytes 0-4999/5000", sha(data)))
        self.assertEqual(self.fetched("gaps.bin")[-1][0], "bytes=500-3999")
        s, hh, b = self.get(url)
        self.assertEqual((s, sha(b), hh["x-cache"][:3]), (200, sha(data), "HIT"))

    def test_changed_representation_discards_parts_and_if_range(self):
        old = os.urandom(4000)
        url = self.put("changes.bin", old)
        self.assert_part(self.ranged(url, 0, 999), old, 0, 999, hit=False)
        s, hh, _ = self.ranged(url, 0, 9)
        etag = hh["etag"]
        # The client's If-Range matching: served from the parts.
        self.assert_part(self.ranged(url, 0, 9, f"If-Range: {etag}"), old, 0, 9, hit=True)
        # The file changes (new ETag): a fill's If-Range no longer matches, nginx sends the
        # whole new object, the client gets it, and the old parts are gone.
        new = os.urandom(4000)
        self.put("changes.bin", new)
        os.utime(os.path.join(self.nginx.root, "changes.bin"), (time.time() - 5 * 86400,) * 2)
        s, hh, b = self.ranged(url, 500, 1499)
        self.assertEqual((s, sha(b)), (200, sha(new)))
        self.assertEqual(self.fetched("changes.bin")[-1][2], "200")
        s, hh, b = self.ranged(url, 0, 9)  # the new object was stored whole
        self.assertEqual((s, b), (206, new[:10]))
        self.assertTrue(hh["x-cache"].startswith("HIT"), hh)

    def test_range_offset_limit_fetches_the_whole_object(self):
        data = os.urandom(300000)
        url = self.put("limit.bin", data)
        self.assert_part(self.ranged(url, 10, 20, proxy=LIMIT_PROXY_PORT), data, 10, 20, hit=False)
        self.assertEqual(self.fetched("limit.bin"), [("-", "-", "200")])  # no Range went out
        s, hh, b = self.get(url, proxy=LIMIT_PROXY_PORT)
        self.assertEqual((s, sha(b), hh["x-cache"][:3]), (200, sha(data), "HIT"))
        self.assert_part(self.ranged(url, 299990, 299999, proxy=LIMIT_PROXY_PORT), data, 299990, 299999, hit=True)
        self.assertEqual(len(self.fetched("limit.bin")), 1)
        # The default (0, Squid's): the range goes as sent.
        data2 = os.urandom(3000)
        url2 = self.put("nolimit.bin", data2)
        self.assert_part(self.ranged(url2, 10, 20), data2, 10, 20, hit=False)
        self.assertEqual(self.fetched("nolimit.bin")[-1][0], "bytes=10-20")

    # ---- hostile origins
    def hroute(self, path, status_line, headers, body):
        head = status_line + b"\r\n" + b"".join(k + b": " + v + b"\r\n" for k, v in headers) + b"\r\n"
        self.hostile.route(path, head + body)

    def part206(self, path, first, last, complete, body, etag=b'"x"', length=None):
        self.hroute(path, b"HTTP/1.1 206 Partial Content", [
            (b"Cache-Control", b"max-age=600"), (b"ETag", etag),
            (b"Content-Range", b"bytes %d-%d/%d" % (first, last, complete)),
            (b"Content-Length", b"%d" % (len(body) if length is None else length))], body)

    def test_hostile_content_range_disagreeing_with_body_or_request_not_stored(self):
        p = "/h/len"
        url = self.hostile.url(p)
        self.part206(p, 0, 9, 100, b"ABCDE")  # Content-Range says 10 bytes, the body is 5
        r = self.ranged(url, 0, 9)
        self.assertEqual(r[2], b"ABCDE")
        self.get(url, "Range: bytes=0-4")
        self.assertEqual(self.hostile.count(p), 2)  # nothing was stored
        p = "/h/other"
        url = self.hostile.url(p)
        self.part206(p, 50, 59, 100, b"5" * 10)  # not the range asked for
        self.ranged(url, 0, 9)
        self.ranged(url, 50, 59)
        self.assertEqual(self.hostile.count(p), 2)

    def test_hostile_206_to_a_request_without_range_not_stored(self):
        p = "/h/norange"
        url = self.hostile.url(p)
        self.part206(p, 0, 9, 10, b"0123456789")
        s, hh, b = self.get(url)
        self.assertEqual((s, b), (206, b"0123456789"))
        s, hh, b = self.get(url)
        self.assertEqual((s, hh["x-cache"][:4]), (206, "MISS"))
        self.assertEqual(self.hostile.count(p), 2)

    def test_hostile_other_etag_for_a_gap_discards_parts(self):
        p = "/h/etag"
        url = self.hostile.url(p)
        self.part206(p, 0, 9, 100, b"A" * 10)
        self.ranged(url, 0, 9)
        self.assertEqual(self.ranged(url, 0, 9)[1]["x-cache"][:3], "HIT")
        # The gap's 206 names another representation: 502, never the mix of two.
        self.part206(p, 10, 19, 100, b"B" * 10, etag=b'"y"')
        s, hh, b = self.ranged(url, 5, 19)
        self.assertEqual(s, 502)
        self.assertIn("If-Range: \"x\"", self.hostile.heads[p])
        self.assertIn("Range: bytes=10-19", self.hostile.heads[p])
        n = self.hostile.count(p)
        self.part206(p, 0, 9, 100, b"C" * 10, etag=b'"y"')
        s, hh, b = self.ranged(url, 0, 9)
        self.assertEqual((b, self.hostile.count(p)), (b"C" * 10, n + 1))  # the old part is gone

    def test_hostile_overlapping_parts_with_other_bytes_never_joined(self):
        p = "/h/overlap"
        url = self.hostile.url(p)
        self.part206(p, 0, 9, 30, b"A" * 10)
        self.ranged(url, 0, 9)
        self.part206(p, 20, 29, 30, b"C" * 10)
        self.ranged(url, 20, 29)
        # Same ETag, but bytes 0-9 come back different inside the span 0-29 asked for
        # bytes 5-24 (gap 10-19 asked; the origin sends 0-29): the answer is cut and
        # nothing is joined.
        self.part206(p, 0, 29, 30, b"X" * 30)
        r = h.curl("-si", "-H", "Range: bytes=5-24", url, check=False)
        self.assertNotIn(b"X" * 5 + b"A", r.stdout)
        self.assertFalse(r.returncode == 0 and r.stdout.endswith(b"A" * 5 + b"X" * 10 + b"C" * 5), r.stdout[-200:])
        n = self.hostile.count(p)
        self.part206(p, 0, 9, 30, b"D" * 10)
        s, hh, b = self.ranged(url, 0, 9)
        self.assertEqual((b, self.hostile.count(p)), (b"D" * 10, n + 1))  # the parts were dropped


if __name__ == "__main__":
    h.main()
