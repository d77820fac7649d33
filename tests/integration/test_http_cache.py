#!/usr/bin/env python3
"""Outpost as a shared HTTP cache (RFC 9111, RFC 9110 conditionals and ranges, RFC 5861,
RFC 9211 Cache-Status). Each test scripts the test origin and counts how many times the
origin was contacted. Test names carry the RFC section they check."""
import os
import signal
import threading
import time

import harness as h

NOW = time.time()


def http_date(t):
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(t))


def parse(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs.setdefault(k.strip().lower(), v.strip())
    return status, hdrs, body


class HttpCache(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.origin = h.TestOrigin(cls.procs)
        cls.nginx = h.Nginx(cls.procs, cls.tmp)
        cls.outpost = h.Outpost(cls.procs, cls.tmp).start()

    # ---- helpers
    def script(self, name, **spec):
        path = f"/script/{name}"
        self.origin.script(path, **spec)
        return path

    def get(self, path, *headers, method="GET", url=None, proxy=h.PROXY_PORT, http10=False):
        args = ["-si", "-X", method] if method not in ("GET", "HEAD") else ["-si"]
        if method == "HEAD":
            args = ["-sI"]
        if http10:
            args.append("-0")
        for x in headers:
            args += ["-H", x]
        r = h.curl(*args, url or self.origin.url(path), proxy=proxy)
        return parse(r.stdout)

    def log_code(self, url_part, expected, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            lines = [l for l in self.outpost.access_lines() if url_part in l]
            if any(f" {expected}/" in l for l in lines):
                return
            time.sleep(0.1)
        self.fail(f"no {expected} for {url_part} in access log:\n" + "\n".join(self.outpost.access_lines()))

    # ---- §3 storing
    def test_s3_get_with_a_body_is_neither_stored_nor_served_from_cache(self):
        p = self.script("s3_get_body", headers=[["Cache-Control", "max-age=60"]], body="for the body")
        r = h.curl("-si", "-X", "GET", "--data-binary", "x=1", "-H", "Content-Type: text/plain", self.origin.url(p))
        self.assertTrue(r.stdout.endswith(b"for the body"))
        s, hd, b = self.get(p)
        self.assertEqual((s, b), (200, b"for the body"))
        self.assertEqual(self.origin.count(p), 2)  # the answer to the GET with a body was not stored
        h.curl("-si", "-X", "GET", "--data-binary", "x=1", self.origin.url(p))
        self.assertEqual(self.origin.count(p), 3)  # ... nor is that request answered from the cache

    def test_s3_fresh_response_is_stored_and_served_without_origin(self):
        p = self.script("s3_fresh", headers=[["Cache-Control", "max-age=60"]], body="fresh body")
        s1, h1, b1 = self.get(p)
        s2, h2, b2 = self.get(p)
        self.assertEqual((s1, b1), (200, b"fresh body"))
        self.assertEqual((s2, b2), (200, b"fresh body"))
        self.assertEqual(self.origin.count(p), 1)
        self.assertTrue(h1["x-cache"].startswith("MISS"))
        self.assertEqual(h2["x-cache"], "HIT from outpost-test")
        self.assertIn("hit", h2["cache-status"])
        self.assertIn("stored", h1["cache-status"])
        self.log_code(p, "TCP_MEM_HIT")
        self.log_code(p, "TCP_MISS")

    def test_s3_no_store_in_response_or_request(self):
        p = self.script("s3_nostore", headers=[["Cache-Control", "no-store, max-age=60"]])
        self.get(p)
        self.get(p)
        self.assertEqual(self.origin.count(p), 2)
        q = self.script("s3_nostore_req", headers=[["Cache-Control", "max-age=60"]])
        self.get(q, "Cache-Control: no-store")
        self.get(q)
        self.assertEqual(self.origin.count(q), 2)

    def test_s5_2_2_4_no_cache_response_stored_but_always_revalidated(self):
        p = self.script("s5_2_2_4_nocache", headers=[["Cache-Control", "no-cache, max-age=600"]], etag='"nc"',
                        body="nc body")
        self.get(p)
        s, hh, b = self.get(p)
        self.assertEqual((s, b), (200, b"nc body"))
        self.assertEqual(self.origin.count(p), 2)  # revalidated, not refetched blindly
        self.assertEqual(self.origin.last_headers(p).get("if-none-match"), '"nc"')
        self.log_code(p, "TCP_REFRESH_UNMODIFIED")

    def test_s3_private_not_stored_by_shared_cache(self):
        p = self.script("s3_private", headers=[["Cache-Control", "private, max-age=60"]])
        self.get(p)
        self.get(p)
        self.assertEqual(self.origin.count(p), 2)

    def test_s3_5_authorization(self):
        p = self.script("s3_auth", headers=[["Cache-Control", "max-age=60"]])
        self.get(p, "Authorization: Basic dTpw")
        self.get(p, "Authorization: Basic dTpw")
        self.assertEqual(self.origin.count(p), 2)
        q = self.script("s3_auth_public", headers=[["Cache-Control", "public, max-age=60"]])
        self.get(q, "Authorization: Basic dTpw")
        self.get(q, "Authorization: Basic dTpw")
        self.assertEqual(self.origin.count(q), 1)

    def test_s3_set_cookie_not_stored_and_never_shared(self):
        p = self.script("s3_cookie", headers=[["Cache-Control", "max-age=60"], ["Set-Cookie", "session=alice"]])
        _, h1, _ = self.get(p)
        self.assertEqual(h1.get("set-cookie"), "session=alice")  # passes end to end
        _, h2, _ = self.get(p)
        self.assertEqual(self.origin.count(p), 2)
        self.assertEqual(h2.get("set-cookie"), "session=alice")

    def test_s3_1_unknown_and_legacy_fields_stored_and_returned_unchanged(self):
        # RFC 9111 §3.1: all received fields are stored, unrecognised ones included, except
        # the hop-by-hop ones and the proxy's own (Proxy-Authentication-Info).
        fields = [["Cache-Control", "max-age=600"], ["Set-Cookie2", 'id="1"; Version="1"'],
                  ["X-Legacy", "caf\u00e9 ,  spaced\tout"], ["P3P", 'CP="NOI DSP"'], ["X-Dup", "one"],
                  ["X-Dup", "two"], ["x-lower-case", "kept"], ["Proxy-Authentication-Info", "nextnonce=abc"]]
        p = self.script("s3_1_fields", headers=fields)
        raw = f"GET {self.origin.url(p)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        miss = h.raw_exchange(raw)
        hit = h.raw_exchange(raw)
        self.assertEqual(self.origin.count(p), 1)
        self.assertIn(b"X-Cache: HIT", hit)

        def fields_of(resp):
            head = resp.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
            return [l for l in head if not l.lower().startswith((b"age:", b"x-cache:", b"cache-status:", b"date:",
                                                                  b"via:", b"connection:", b"server:"))]
        expected = [b"Set-Cookie2: " + fields[1][1].encode(), "X-Legacy: caf\u00e9 ,  spaced\tout".encode("latin-1"),
                    b'P3P: CP="NOI DSP"', b"X-Dup: one", b"X-Dup: two", b"x-lower-case: kept"]
        for line in expected:
            self.assertIn(line, fields_of(miss))
            self.assertIn(line, fields_of(hit))
        self.assertNotIn(b"Proxy-Authentication-Info", hit)
        # Order kept too: the hit's fields are the miss's, less the proxy's own.
        self.assertEqual([l for l in fields_of(miss) if not l.startswith(b"Proxy-Authentication-Info")],
                         fields_of(hit))

    def test_s3_status_codes_heuristic_and_explicit(self):
        lm = http_date(NOW - 86400 * 10)
        p = self.script("s3_404", status=404, last_modified=lm, body="gone")
        self.get(p)
        s, hh, _ = self.get(p)
        self.assertEqual((s, self.origin.count(p)), (404, 1))
        q = self.script("s3_302", status=302, last_modified=lm, headers=[["Location", "/x"]])
        self.get(q)
        self.get(q)
        self.assertEqual(self.origin.count(q), 2)  # 302 needs explicit freshness
        r = self.script("s3_302_explicit", status=302, headers=[["Location", "/x"], ["Cache-Control", "max-age=60"]])
        self.get(r)
        self.get(r)
        self.assertEqual(self.origin.count(r), 1)

    def test_s3_3_incomplete_response_not_stored(self):
        before = self.origin.count("/stall")
        h.curl(self.origin.url("/stall?delay=0.5"), check=False)
        h.curl(self.origin.url("/stall?delay=0.5"), check=False)
        self.assertEqual(self.origin.count("/stall"), before + 2)

    # ---- §4.1 Vary
    def test_s4_1_vary_secondary_key(self):
        p = self.script("s4_1_vary", headers=[["Cache-Control", "max-age=60"], ["Vary", "Accept-Language"]],
                        body_from_header="Accept-Language")
        self.assertEqual(self.get(p, "Accept-Language: en")[2], b"en")
        self.assertEqual(self.get(p, "Accept-Language: fr")[2], b"fr")
        self.assertEqual(self.get(p, "Accept-Language: en")[2], b"en")
        self.assertEqual(self.get(p, "Accept-Language: fr")[2], b"fr")
        self.assertEqual(self.origin.count(p), 2)
        self.assertEqual(self.get(p)[2], b"")  # absent header is its own variant
        self.assertEqual(self.origin.count(p), 3)

    def test_s4_1_vary_accept_encoding_and_language_normalised(self):
        # Browsers that say the same thing differently share a variant: Accept-Encoding by the
        # set of codings accepted, Accept-Language by the ranges in order of preference.
        p = self.script("vary_norm_ae", headers=[["Cache-Control", "max-age=60"], ["Vary", "Accept-Encoding"]],
                        body_from_header="Accept-Encoding")
        self.assertEqual(self.get(p, "Accept-Encoding: gzip, deflate, br")[2], b"gzip, deflate, br")
        for same in ("br, gzip, deflate", "GZIP;q=1.0, deflate;q=0.5, br", "deflate,gzip,br,identity"):
            _, hdrs, body = self.get(p, f"Accept-Encoding: {same}")
            self.assertEqual(body, b"gzip, deflate, br", same)
            self.assertIn("HIT", hdrs["x-cache"], same)
        self.assertEqual(self.origin.count(p), 1)
        self.assertEqual(self.get(p, "Accept-Encoding: gzip, deflate, br;q=0")[2], b"gzip, deflate, br;q=0")
        self.assertEqual(self.get(p, "Accept-Encoding: identity")[2], b"identity")
        self.assertEqual(self.origin.count(p), 3)
        q = self.script("vary_norm_al", headers=[["Cache-Control", "max-age=60"], ["Vary", "Accept-Language"]],
                        body_from_header="Accept-Language")
        self.assertEqual(self.get(q, "Accept-Language: en-US,en;q=0.9")[2], b"en-US,en;q=0.9")
        self.assertEqual(self.get(q, "Accept-Language: en-us, en;q=0.5, xx;q=0")[2], b"en-US,en;q=0.9")
        self.assertEqual(self.get(q, "Accept-Language: en,en-US")[2], b"en,en-US")  # another preference
        self.assertEqual(self.origin.count(q), 2)

    def test_s4_1_variants_per_url_are_capped(self):
        # http_cache.max_variants (32): the 33rd distinct variant of one URL is served but not
        # stored; the stored ones stay hits.
        p = self.script("vary_cap", headers=[["Cache-Control", "max-age=60"], ["Vary", "X-Variant"]],
                        body_from_header="X-Variant")
        for i in range(32):
            _, hdrs, _ = self.get(p, f"X-Variant: v{i}")
            self.assertIn("stored", hdrs["cache-status"], i)
        _, hdrs, body = self.get(p, "X-Variant: v32")
        self.assertEqual(body, b"v32")
        self.assertIn("max_variants", hdrs["cache-status"])
        self.get(p, "X-Variant: v32")
        self.assertEqual(self.origin.count(p), 34)
        _, hdrs, body = self.get(p, "X-Variant: v7")
        self.assertEqual(body, b"v7")
        self.assertIn("HIT", hdrs["x-cache"])
        self.assertEqual(self.origin.count(p), 34)

    def test_s4_1_vary_star_never_matches(self):
        p = self.script("s4_1_star", headers=[["Cache-Control", "max-age=60"], ["Vary", "*"]])
        self.get(p)
        self.get(p)
        self.assertEqual(self.origin.count(p), 2)

    # ---- §4.2 freshness and age
    def test_s4_2_1_s_maxage_beats_max_age(self):
        p = self.script("s4_2_1_smaxage", headers=[["Cache-Control", "max-age=600, s-maxage=1"]])
        self.get(p)
        time.sleep(2.2)
        self.get(p)
        self.assertEqual(self.origin.count(p), 2)

    def test_s4_2_1_expires(self):
        p = self.script("s4_2_1_expires", headers=[["Expires", http_date(time.time() + 120)]])
        self.get(p)
        self.get(p)
        self.assertEqual(self.origin.count(p), 1)
        q = self.script("s4_2_1_expires_past", headers=[["Expires", "0"]])
        self.get(q)
        self.get(q)
        self.assertEqual(self.origin.count(q), 2)

    def test_s4_2_3_age_that_is_not_one_integer_is_stale(self):
        # One Age field of digits counts; anything else (a sign, a list, quotes, two fields)
        # leaves the age unknown and the stored response stale: the next request goes on.
        ok = self.script("age_ok", headers=[["Cache-Control", "max-age=600"], ["Age", "10"]])
        self.get(ok)
        self.get(ok)
        self.assertEqual(self.origin.count(ok), 1)
        for i, ages in enumerate((["-1"], ["10, 20"], ['"10"'], ["1.5"], ["10", "10"])):
            p = self.script(f"age_bad_{i}", headers=[["Cache-Control", "max-age=600"]] + [["Age", a] for a in ages])
            self.get(p)
            status, hdrs, _ = self.get(p)
            self.assertEqual(status, 200)
            self.assertEqual(self.origin.count(p), 2, ages)
            self.assertIn("miss", hdrs["x-cache"].lower())

    def test_s4_2_1_expires_and_date_in_their_three_exact_forms(self):
        later = time.time() + 3600
        forms = {
            "imf": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(later)),
            "rfc850": time.strftime("%A, %d-%b-%y %H:%M:%S GMT", time.gmtime(later)),
            "asctime": time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(later)),
        }
        for name, value in forms.items():
            p = self.script(f"expires_{name}", headers=[["Expires", value]])
            self.get(p)
            _, hdrs, _ = self.get(p)
            self.assertEqual(self.origin.count(p), 1, value)
            self.assertIn("HIT", hdrs["x-cache"])
        imf = forms["imf"]
        bad = {
            "two_spaces": imf.replace(", ", ",  "),
            "utc": imf.replace("GMT", "UTC"),
            "lower": imf.replace("GMT", "gmt"),
            "short_year": time.strftime("%a, %d %b %y %H:%M:%S GMT", time.gmtime(later)),
            "asctime_short_year": time.strftime("%a %b %e %H:%M:%S %y", time.gmtime(later)),
            "asctime_zone": time.strftime("%a %b %e %H:%M:%S %Y GMT", time.gmtime(later)),
        }
        for name, value in bad.items():
            p = self.script(f"expires_bad_{name}", headers=[["Expires", value]])
            self.get(p)
            self.get(p)
            self.assertEqual(self.origin.count(p), 2, value)
        # An Expires in the future against a Date that is not an HTTP-date: Expires - Date
        # cannot be computed, so stale.
        p = self.script("expires_bad_date", headers=[["Expires", imf]],
                        date=time.strftime("%a, %d %b %Y %H:%M:%S UTC", time.gmtime()))
        self.get(p)
        self.get(p)
        self.assertEqual(self.origin.count(p), 2)

    def test_rfc9213_targeted_cache_control_when_configured(self):
        # http_cache.targeted_cache_control = "CDN-Cache-Control": that field's directives
        # govern in place of Cache-Control (and Expires); without the option it is ignored.
        d = os.path.join(self.tmp, "targeted")
        os.makedirs(d)
        accel = h.Outpost(self.procs, d, port=3141, extra_config='[proxy]\nlisten = ["127.0.0.1:3141"]\n'
                          '[http_cache]\ntargeted_cache_control = "CDN-Cache-Control"\n').start()
        try:
            p = self.script("targeted_store", headers=[["Cache-Control", "no-store"], ["CDN-Cache-Control", "max-age=600"]])
            self.get(p, proxy=3141)
            _, hdrs, _ = self.get(p, proxy=3141)
            self.assertIn("HIT", hdrs["x-cache"])
            self.assertEqual(self.origin.count(p), 1)
            self.get(p)  # the forward proxy obeys Cache-Control: no-store
            self.get(p)
            self.assertEqual(self.origin.count(p), 3)
            q = self.script("targeted_private", headers=[["Cache-Control", "public, max-age=600"],
                                                         ["CDN-Cache-Control", "private"]])
            self.get(q, proxy=3141)
            self.get(q, proxy=3141)
            self.assertEqual(self.origin.count(q), 2)
            # A malformed targeted field is ignored: Cache-Control governs.
            r = self.script("targeted_bad", headers=[["Cache-Control", "max-age=600"], ["CDN-Cache-Control", "max-age=,"]])
            self.get(r, proxy=3141)
            self.get(r, proxy=3141)
            self.assertEqual(self.origin.count(r), 1)
        finally:
            accel.stop()

    def test_s4_2_2_heuristic_freshness_for_any_status_when_public(self):
        # RFC 9111 §4.2.2: a response marked public may get a heuristic lifetime whatever its
        # status: a 302 with Last-Modified an hour old is fresh for 10% of that.
        p = self.script("public_302", status=302, last_modified=http_date(NOW - 36000),
                        headers=[["Cache-Control", "public"], ["Location", "/elsewhere"]])
        status, _, _ = self.get(p)
        self.assertEqual(status, 302)
        status, hdrs, _ = self.get(p)
        self.assertEqual(status, 302)
        self.assertIn("HIT", hdrs["x-cache"])
        self.assertEqual(self.origin.count(p), 1)
        q = self.script("plain_302", status=302, last_modified=http_date(NOW - 36000), headers=[["Location", "/x"]])
        self.get(q)
        self.get(q)
        self.assertEqual(self.origin.count(q), 2)

    def test_s4_2_2_heuristic_freshness_from_last_modified(self):
        p = self.script("s4_2_2_heur", last_modified=http_date(NOW - 86400 * 30))
        self.get(p)
        _, hh, _ = self.get(p)
        self.assertEqual(self.origin.count(p), 1)
        self.assertEqual(hh["x-cache"], "HIT from outpost-test")

    def test_s4_2_3_age_counts_upstream_age_and_resident_time(self):
        p = self.script("s4_2_3_age", headers=[["Cache-Control", "max-age=100"], ["Age", "30"]])
        self.get(p)
        time.sleep(1.1)
        _, hh, _ = self.get(p)
        self.assertGreaterEqual(int(hh["age"]), 31)
        self.assertLess(int(hh["age"]), 40)

    def test_s4_2_expiry_then_refetch(self):
        # Ages are whole seconds: max-age=2 keeps the immediate second request safely fresh.
        p = self.script("s4_2_expire", headers=[["Cache-Control", "max-age=2"]])
        self.get(p)
        self.get(p)
        self.assertEqual(self.origin.count(p), 1)
        time.sleep(3.1)
        self.get(p)
        self.assertEqual(self.origin.count(p), 2)

    # ---- §4.3 validation
    def test_s4_3_1_revalidation_304_serves_stored_body(self):
        p = self.script("s4_3_etag", headers=[["Cache-Control", "max-age=1"]], etag='"v1"', body="stored body")
        self.get(p)
        time.sleep(2.1)
        # The origin's 304 will carry new header values: §4.3.4 says they replace the stored ones.
        self.script("s4_3_etag", headers=[["Cache-Control", "max-age=600"], ["X-Version", "2"]], etag='"v1"',
                    body="the origin would send this on a 200")
        s, hh, b = self.get(p)
        self.assertEqual((s, b), (200, b"stored body"))
        self.assertEqual(hh["cache-control"], "max-age=600")
        self.assertEqual(hh["x-version"], "2")
        self.assertEqual(self.origin.count(p), 2)
        self.assertEqual(self.origin.last_headers(p).get("if-none-match"), '"v1"')
        self.log_code(p, "TCP_REFRESH_UNMODIFIED")
        # The refreshed entry is fresh again (its new lifetime is 600 s).
        self.get(p)
        self.assertEqual(self.origin.count(p), 2)

    def test_s4_3_1_revalidation_with_last_modified(self):
        lm = http_date(NOW - 3600)
        p = self.script("s4_3_lm", headers=[["Cache-Control", "max-age=1"]], last_modified=lm, body="lm body")
        self.get(p)
        time.sleep(2.1)
        s, _, b = self.get(p)
        self.assertEqual((s, b), (200, b"lm body"))
        self.assertEqual(self.origin.last_headers(p).get("if-modified-since"), lm)

    def test_s4_3_3_revalidation_200_replaces(self):
        p = self.script("s4_3_replace", headers=[["Cache-Control", "max-age=1"]], etag='"a"', body="old")
        self.get(p)
        time.sleep(2.1)
        self.script("s4_3_replace", headers=[["Cache-Control", "max-age=60"]], etag='"b"', body="new")
        self.assertEqual(self.get(p)[2], b"new")
        self.log_code(p, "TCP_REFRESH_MODIFIED")
        self.assertEqual(self.get(p)[2], b"new")
        self.assertEqual(self.origin.count(p), 2)

    def test_s4_3_2_client_conditionals_answered_from_fresh_entry(self):
        lm = http_date(NOW - 3600)
        p = self.script("s4_3_2_cond", headers=[["Cache-Control", "max-age=60"]], etag='"x1"', last_modified=lm)
        self.get(p)
        s, hh, b = self.get(p, 'If-None-Match: W/"x1"')
        self.assertEqual((s, b), (304, b""))
        s, _, _ = self.get(p, 'If-None-Match: "other"')
        self.assertEqual(s, 200)
        s, _, _ = self.get(p, "If-Modified-Since: " + http_date(NOW))
        self.assertEqual(s, 304)
        s, _, _ = self.get(p, "If-Modified-Since: " + http_date(NOW - 7200))
        self.assertEqual(s, 200)
        self.assertEqual(self.origin.count(p), 1)
        self.log_code(p, "TCP_IMS_HIT")

    # ---- §5.2.1 request directives
    def test_conditional_miss_fetched_whole_stored_and_answered_from_it(self):
        # A conditional GET on a miss goes to the origin without its conditionals when the
        # answer may be stored; the 200 is stored and the client's conditional answered from
        # it (304 here), so the next plain GET is a hit.
        body = "x" * 50000
        p = self.script("cond_miss", etag='"c1"', headers=[["Cache-Control", "max-age=600"]], body=body)
        status, hdrs, got = self.get(p, 'If-None-Match: "c1"')
        self.assertEqual(status, 304)
        self.assertEqual(got, b"")
        self.assertEqual(hdrs.get("etag"), '"c1"')
        self.assertNotIn("content-length", hdrs)
        self.assertNotIn("if-none-match", self.origin.last_headers(p))
        self.assertIn("stored", hdrs["cache-status"])
        status, hdrs, got = self.get(p)
        self.assertEqual((status, len(got)), (200, len(body)))
        self.assertIn("HIT", hdrs["x-cache"])
        self.assertEqual(self.origin.count(p), 1)
        self.log_code("/script/cond_miss", "TCP_MISS")
        # If-Modified-Since, and a conditional that does not match: the 200 goes on whole.
        lm = http_date(NOW - 3600)
        q = self.script("cond_miss_ims", last_modified=lm, headers=[["Cache-Control", "max-age=600"]], body="ims")
        status, _, got = self.get(q, f"If-Modified-Since: {lm}")
        self.assertEqual((status, got), (304, b""))
        self.assertNotIn("if-modified-since", self.origin.last_headers(q))
        r = self.script("cond_miss_changed", etag='"new"', headers=[["Cache-Control", "max-age=600"]], body="changed")
        status, _, got = self.get(r, 'If-None-Match: "old"')
        self.assertEqual((status, got), (200, b"changed"))
        self.get(r)
        self.assertEqual(self.origin.count(r), 1)

    def test_conditional_miss_on_a_key_known_uncacheable_goes_as_sent(self):
        # Once the key is known not to be storable (hit-for-miss), the conditional goes to the
        # origin as the client sent it and the origin's 304 comes back.
        p = self.script("cond_nostore", etag='"n1"', headers=[["Cache-Control", "no-store"]], body="secret")
        status, _, got = self.get(p, 'If-None-Match: "n1"')
        self.assertEqual((status, got), (304, b""))  # answered from the unstored 200
        self.assertNotIn("if-none-match", self.origin.last_headers(p))
        status, _, _ = self.get(p, 'If-None-Match: "n1"')
        self.assertEqual(status, 304)
        self.assertEqual(self.origin.last_headers(p).get("if-none-match"), '"n1"')
        self.assertEqual(self.origin.count(p), 2)

    def test_s5_2_1_request_directives(self):
        p = self.script("s5_2_1_req", headers=[["Cache-Control", "max-age=60"]], etag='"r"')
        self.get(p)
        self.get(p, "Cache-Control: max-age=0")  # forces validation
        self.assertEqual(self.origin.count(p), 2)
        self.get(p, "Cache-Control: no-cache")
        self.assertEqual(self.origin.count(p), 3)
        self.get(p, "Pragma: no-cache", http10=True)
        self.assertEqual(self.origin.count(p), 4)
        self.get(p, "Cache-Control: min-fresh=3600")
        self.assertEqual(self.origin.count(p), 5)
        self.get(p)
        self.assertEqual(self.origin.count(p), 5)

    def test_s5_2_1_7_only_if_cached(self):
        s, _, _ = self.get("/script/never-stored", "Cache-Control: only-if-cached")
        self.assertEqual(s, 504)
        self.assertEqual(self.origin.count("/script/never-stored"), 0)
        p = self.script("s5_2_1_oic", headers=[["Cache-Control", "max-age=60"]])
        self.get(p)
        s, _, _ = self.get(p, "Cache-Control: only-if-cached")
        self.assertEqual(s, 200)

    def test_s5_2_1_2_max_stale(self):
        p = self.script("s5_2_1_maxstale", headers=[["Cache-Control", "max-age=1"]])
        self.get(p)
        time.sleep(2.1)
        s, hh, _ = self.get(p, "Cache-Control: max-stale=60")
        self.assertEqual(s, 200)
        self.assertEqual(self.origin.count(p), 1)

    # ---- §4.4 invalidation
    def test_s4_4_unsafe_methods_invalidate(self):
        p = self.script("s4_4_target", headers=[["Cache-Control", "max-age=60"]])
        loc = self.script("s4_4_loc", headers=[["Cache-Control", "max-age=60"]])
        self.get(p)
        self.get(loc)
        self.script("s4_4_post", status=201, headers=[["Location", loc]])
        self.get("/script/s4_4_post", method="POST")
        self.get(p)
        self.assertEqual(self.origin.count(p), 1)  # a different URL: untouched
        self.get(loc)
        self.assertEqual(self.origin.count(loc), 2)  # named by Location on the same host
        # POST to the cached URL itself.
        self.get(p, method="POST")
        self.get(p)
        self.assertEqual(self.origin.count(p), 3)

    def test_s4_4_extension_methods_are_unsafe_and_invalidate(self):
        # RFC 9110 §9.2.1: only GET, HEAD, OPTIONS and TRACE are safe; a non-error response to
        # any other method, extension methods included, invalidates the target (RFC 9111 §4.4).
        p = self.script("s4_4_ext", headers=[["Cache-Control", "max-age=60"]])
        self.get(p)
        self.get(p)
        self.assertEqual(self.origin.count(p), 1)
        status, _, _ = self.get(p, method="BREW")
        self.assertEqual(status, 200)
        self.get(p)
        self.assertEqual(self.origin.count(p), 3)  # BREW, then the GET refetched
        # Safe methods leave it: OPTIONS and TRACE reach the origin, the entry stays.
        self.get(p, method="OPTIONS")
        self.get(p)
        self.assertEqual(self.origin.count(p), 4)
        # An error answer to an unsafe method invalidates nothing.
        e = self.script("s4_4_ext_err", status=405, headers=[["Cache-Control", "max-age=60"]])
        self.get(e)
        self.get(e, method="PROPPATCH")
        self.get(e)
        self.assertEqual(self.origin.count(e), 2)

    # ---- RFC 9110 §14 ranges
    def test_rfc9110_s14_ranges_from_stored_object(self):
        body = "0123456789abcdefghij"
        p = self.script("ranges", headers=[["Cache-Control", "max-age=60"]], body=body, content_type="text/plain")
        self.get(p)
        s, hh, b = self.get(p, "Range: bytes=2-5")
        self.assertEqual((s, b), (206, b"2345"))
        self.assertEqual(hh["content-range"], "bytes 2-5/20")
        s, hh, b = self.get(p, "Range: bytes=-3")
        self.assertEqual(b, b"hij")
        s, hh, b = self.get(p, "Range: bytes=0-1,10-11")
        self.assertEqual(s, 206)
        self.assertIn("multipart/byteranges", hh["content-type"])
        self.assertIn(b"Content-Range: bytes 0-1/20\r\n\r\n01", b)
        self.assertIn(b"Content-Range: bytes 10-11/20\r\n\r\nab", b)
        s, hh, _ = self.get(p, "Range: bytes=50-60")
        self.assertEqual(s, 416)
        self.assertEqual(hh["content-range"], "bytes */20")
        self.assertEqual(self.origin.count(p), 1)

    def test_rfc9110_s14_3_overlapping_ranges_coalesced_not_amplified(self):
        body = "0123456789abcdef" * 4096  # 64 KiB
        p = self.script("ranges_amp", headers=[["Cache-Control", "max-age=60"]], body=body, content_type="text/plain")
        self.get(p)
        # 32 overlapping "0-" ranges used to send the object 32 times in a multipart body.
        s, hh, b = self.get(p, "Range: bytes=" + ",".join(["0-"] * 32))
        self.assertEqual(s, 200)
        self.assertEqual(b, body.encode())
        self.assertEqual(hh["content-length"], str(len(body)))
        self.assertNotIn("content-range", hh)
        # Two disjoint ranges: a two-part multipart/byteranges, in request order.
        s, hh, b = self.get(p, "Range: bytes=100-109, 10-19")
        self.assertEqual(s, 206)
        self.assertIn("multipart/byteranges", hh["content-type"])
        self.assertEqual(b.count(b"Content-Range: "), 2)
        self.assertLess(b.index(b"bytes 100-109/65536\r\n\r\n" + body[100:110].encode()),
                        b.index(b"bytes 10-19/65536\r\n\r\n" + body[10:20].encode()))
        # An overlapping pair: one coalesced part.
        s, hh, b = self.get(p, "Range: bytes=10-19, 15-29")
        self.assertEqual((s, b), (206, body[10:30].encode()))
        self.assertEqual(hh["content-range"], "bytes 10-29/65536")
        # More ranges than the cap: the header is ignored.
        s, hh, b = self.get(p, "Range: bytes=" + ",".join(f"{i * 2}-{i * 2}" for i in range(33)))
        self.assertEqual((s, len(b)), (200, len(body)))
        self.assertEqual(self.origin.count(p), 1)

    def test_rfc9110_s14_partial_from_origin_passed_not_stored(self):
        self.nginx.put_file("ranged.txt", b"abcdefghijklmnopqrstuvwxyz")
        url = f"http://127.0.0.1:{h.NGINX_PORT}/ranged.txt"
        s, hh, b = self.get(None, "Range: bytes=0-2", url=url)
        self.assertEqual((s, b), (206, b"abc"))
        s, hh, b = self.get(None, url=url)
        self.assertEqual((s, b), (200, b"abcdefghijklmnopqrstuvwxyz"))
        self.assertTrue(hh["x-cache"].startswith("MISS"))

    # ---- HEAD from a stored GET
    def test_head_answered_from_stored_get(self):
        p = self.script("head", headers=[["Cache-Control", "max-age=60"]], body="x" * 123)
        self.get(p)
        s, hh, b = self.get(p, method="HEAD")
        self.assertEqual((s, hh["content-length"], b), (200, "123", b""))
        self.assertEqual(self.origin.count(p), 1)

    # ---- RFC 5861
    def test_rfc5861_stale_if_error(self):
        p = self.script("sie", headers=[["Cache-Control", "max-age=1, stale-if-error=60"]], etag='"s"', body="stale ok")
        self.get(p)
        time.sleep(2.1)
        self.script("sie", status=500, body="broken")
        s, _, b = self.get(p)
        self.assertEqual((s, b), (200, b"stale ok"))
        self.log_code(p, "TCP_REFRESH_FAIL_OLD")

    def test_rfc5861_stale_while_revalidate_background_refresh(self):
        p = self.script("swr", headers=[["Cache-Control", "max-age=1, stale-while-revalidate=60"]], etag='"w1"',
                        body="swr body")
        self.get(p)
        time.sleep(2.1)
        self.script("swr", headers=[["Cache-Control", "max-age=600, stale-while-revalidate=60"]], etag='"w1"',
                    body="not sent: the origin answers 304", delay=2)
        t0 = time.time()
        s, hh, b = self.get(p)
        self.assertEqual((s, b), (200, b"swr body"))
        self.assertLess(time.time() - t0, 1.5, "stale response waited for the origin")
        self.log_code(p, "TCP_STALE_HIT")
        deadline = time.time() + 5
        while self.origin.count(p) < 2 and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.origin.count(p), 2)  # exactly one background revalidation
        self.assertEqual(self.origin.last_headers(p).get("if-none-match"), '"w1"')
        time.sleep(2.3)  # let the (delayed) 304 land
        s, hh, b = self.get(p)
        self.assertEqual(hh["cache-control"], "max-age=600, stale-while-revalidate=60")
        self.assertTrue(hh["cache-status"].split(";")[1].strip() == "hit")
        self.assertEqual(self.origin.count(p), 2)

    # ---- collapsed forwarding
    def test_collapsed_forwarding_one_origin_request(self):
        p = self.script("collapse", headers=[["Cache-Control", "max-age=60"]], body="c" * 5000, delay=0.5,
                        trickle=1.0)
        results = []

        def fetch():
            results.append(self.get(p))

        threads = [threading.Thread(target=fetch) for _ in range(6)]
        for t in threads:
            t.start()
            time.sleep(0.05)
        for t in threads:
            t.join()
        self.assertEqual([r[0] for r in results], [200] * 6)
        self.assertTrue(all(r[2] == b"c" * 5000 for r in results))
        self.assertEqual(self.origin.count(p), 1)
        self.log_code(p, "TCP_CF_HIT")

    def test_uncacheable_url_is_not_collapsed_once_known(self):
        # Hit-for-miss: a URL whose answer could not be stored is marked, and later requests
        # for it go to the origin side by side instead of queueing behind one in flight.
        p = self.script("pass", headers=[["Cache-Control", "no-store"]], body="not for the cache", delay=2.0)

        def batch(n):
            results = []
            threads = [threading.Thread(target=lambda: results.append(self.get(p))) for _ in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual([(r[0], r[2]) for r in results], [(200, b"not for the cache")] * n)

        batch(3)  # unknown URL: one leads, two wait for its head, then fetch their own
        self.assertEqual(self.origin.count(p), 3)
        self.assertEqual(self.origin.peak_waiting(p), 2)  # the leader never overlapped the other two
        batch(4)  # known uncacheable: nobody waits for anybody
        self.assertEqual(self.origin.count(p), 7)
        self.assertEqual(self.origin.peak_waiting(p), 4)

    def test_uncacheable_url_that_becomes_cacheable_is_stored(self):
        p = self.script("pass_then_store", headers=[["Cache-Control", "no-store"]], body="v1")
        self.assertEqual(self.get(p)[2], b"v1")
        self.script("pass_then_store", headers=[["Cache-Control", "max-age=60"]], body="v2")
        self.assertEqual(self.get(p)[2], b"v2")  # marked pass, still stored when it can be
        s, hd, b = self.get(p)
        self.assertEqual((s, b), (200, b"v2"))
        self.assertEqual(self.origin.count(p), 2)
        self.assertEqual(hd["cache-status"].split(";")[1].strip(), "hit")
        # ... and the mark is gone: with the object purged, concurrent requests collapse again.
        self.assertEqual(self.get(p, method="PURGE")[0], 200)
        self.script("pass_then_store", headers=[["Cache-Control", "max-age=60"]], body="v3", delay=2.0)
        results = []
        threads = [threading.Thread(target=lambda: results.append(self.get(p))) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual([r[2] for r in results], [b"v3"] * 3)
        self.assertEqual(self.origin.count(p), 3)

    # ---- PURGE
    def test_purge_from_admin_network(self):
        p = self.script("purge", headers=[["Cache-Control", "max-age=60"]])
        self.get(p)
        s, _, _ = self.get(p, method="PURGE")
        self.assertEqual(s, 200)
        s, _, _ = self.get(p, method="PURGE")
        self.assertEqual(s, 404)
        self.get(p)
        self.assertEqual(self.origin.count(p), 2)


class PurgeDenied(h.IntegrationTest):
    """PURGE only from acl.purge_clients; others get 403 and the entry stays."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.origin = h.TestOrigin(cls.procs)
        cls.outpost = h.Outpost(cls.procs, cls.tmp, acl=(
            '[acl]\nallow_clients = ["127.0.0.0/8"]\nallow_networks = ["127.0.0.0/8"]\n'
            'purge_clients = ["10.0.0.0/8"]\n')).start()

    def test_purge_from_other_networks_is_403(self):
        self.origin.script("/script/keep", headers=[["Cache-Control", "max-age=600"]], body="keep")
        h.curl(self.origin.url("/script/keep"))
        r = h.curl("-si", "-X", "PURGE", self.origin.url("/script/keep"), check=False)
        self.assertEqual(h.status_of(r.stdout), 403)
        r = h.curl("-si", self.origin.url("/script/keep"))
        self.assertIn(b"X-Cache: HIT", r.stdout)
        self.assertEqual(self.origin.count("/script/keep"), 1)


class ConditionalMissInAFullCache(h.IntegrationTest):
    """A conditional miss is fetched whole only when the store would keep the object: in a full
    memory-only cache, a key it has not seen come back goes to the origin as the client's
    conditional (the origin's 304 costs no body), and one already asked for more often than
    the store's next victim is fetched whole, stored and answered from."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.origin = h.TestOrigin(cls.procs)
        cls.outpost = h.Outpost(cls.procs, cls.tmp, extra_config="[cache]\nmemory_size = 1048576\nmax_object_size = 262144\n").start()
        for i in range(64):  # 2 MiB of objects seen once: the 1 MiB store is full
            p = f"/script/fill{i}"
            cls.origin.script(p, headers=[["Cache-Control", "max-age=600"]], body="f" * 32768)
            h.curl("-s", "-o", "/dev/null", cls.origin.url(p))

    def get(self, path, *headers, method="GET"):
        args = ["-si"] + (["-X", method] if method != "GET" else [])
        for x in headers:
            args += ["-H", x]
        return parse(h.curl(*args, self.origin.url(path)).stdout)

    def test_fetched_whole_only_when_the_store_would_keep_it(self):
        cc = [["Cache-Control", "max-age=600"]]
        # A stranger: the conditional goes as sent, and the origin's 304 is relayed.
        self.origin.script("/script/cold", etag='"c"', headers=cc, body="c" * 4000)
        status, hdrs, got = self.get("/script/cold", 'If-None-Match: "c"')
        self.assertEqual((status, got), (304, b""))
        self.assertEqual(self.origin.last_headers("/script/cold").get("if-none-match"), '"c"')
        self.assertNotIn("stored", hdrs.get("cache-status", ""))
        status, hdrs, got = self.get("/script/cold")  # not stored by the 304
        self.assertEqual((status, len(got)), (200, 4000))
        self.assertEqual(self.origin.count("/script/cold"), 2)
        # A key stored twice before (its count beats the fill objects' one each), purged: the
        # conditional is fetched whole, stored, and answered from the stored copy.
        self.origin.script("/script/warm", etag='"w"', headers=cc, body="w" * 4000)
        for _ in range(2):
            self.assertEqual(self.get("/script/warm")[0], 200)
            self.assertEqual(self.get("/script/warm", method="PURGE")[0], 200)
        status, hdrs, got = self.get("/script/warm", 'If-None-Match: "w"')
        self.assertEqual((status, got), (304, b""))
        self.assertNotIn("if-none-match", self.origin.last_headers("/script/warm"))
        self.assertIn("stored", hdrs["cache-status"])
        status, hdrs, got = self.get("/script/warm")
        self.assertEqual((status, len(got)), (200, 4000))
        self.assertIn("HIT", hdrs["x-cache"])
        self.assertEqual(self.origin.count("/script/warm"), 3)

    def test_a_new_variants_conditional_is_judged_by_its_own_key(self):
        # The URL's Vary marker (its primary key) is touched by every variant's lookup; a
        # variant nobody asked for yet is judged by its own key.
        cc = [["Cache-Control", "max-age=600"], ["Vary", "Accept-Language"]]
        self.origin.script("/script/vary", etag='"v"', headers=cc, body="v" * 4000)
        for _ in range(4):
            self.assertEqual(self.get("/script/vary", "Accept-Language: en")[0], 200)
        for i in range(3):  # the marker, hit three times, leaves the small queue for main
            p = f"/script/push{i}"
            self.origin.script(p, headers=[["Cache-Control", "max-age=600"]], body="p" * 32768)
            self.assertEqual(self.get(p)[0], 200)
        status, _, got = self.get("/script/vary", "Accept-Language: de", 'If-None-Match: "v"')
        self.assertEqual((status, got), (304, b""))
        self.assertEqual(self.origin.last_headers("/script/vary").get("if-none-match"), '"v"')
        self.assertEqual(self.origin.count("/script/vary"), 2)

    def concurrently(self, *calls):
        threads = [threading.Thread(target=c) for c in calls]
        for t in threads:
            t.start()
            time.sleep(0.2)  # in this order
        for t in threads:
            t.join()

    def test_a_conditional_sent_as_it_came_neither_collapses_nor_marks_the_url(self):
        cc = [["Cache-Control", "max-age=600"]]
        got = []
        def plain(path):
            return lambda: got.append(self.get(path)[0])
        # Plain GETs arriving while a stranger's conditional is at the origin do not wait for
        # its 304 (meant for that client alone): one of them leads, the others follow it.
        self.origin.script("/script/slow_cond", etag='"s"', headers=cc, body="s" * 4000, delay=1)
        self.concurrently(lambda: got.append(self.get("/script/slow_cond", 'If-None-Match: "s"')[0]),
                          plain("/script/slow_cond"), plain("/script/slow_cond"), plain("/script/slow_cond"))
        self.assertEqual(sorted(got), [200, 200, 200, 304])
        self.assertEqual(self.origin.count("/script/slow_cond"), 2)
        # The relayed 304 does not mark the URL uncacheable: plain GETs after it still collapse.
        got.clear()
        self.origin.script("/script/after_304", etag='"a"', headers=cc, body="a" * 4000, delay=1)
        status, hdrs, _ = self.get("/script/after_304", 'If-None-Match: "a"')
        self.assertEqual(status, 304)
        self.assertNotIn("status is not", hdrs.get("cache-status", ""))
        self.concurrently(plain("/script/after_304"), plain("/script/after_304"), plain("/script/after_304"))
        self.assertEqual(got, [200, 200, 200])
        self.assertEqual(self.origin.count("/script/after_304"), 2)


class MustRevalidate(h.IntegrationTest):
    """§5.2.2.2: a must-revalidate entry is never served stale; unreachable origin → 504."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.origin = h.TestOrigin(cls.procs, port=8090)
        cls.outpost = h.Outpost(cls.procs, cls.tmp, extra_config="[origin]\nconnect_timeout = 1\n").start()

    def test_s5_2_2_2_must_revalidate_gives_504_when_origin_is_gone(self):
        for name, cc in (("mr", "max-age=1, must-revalidate"), ("plain", "max-age=1, stale-if-error=60")):
            self.origin.script(f"/script/{name}", headers=[["Cache-Control", cc]], etag='"m"', body="m")
            h.curl(self.origin.url(f"/script/{name}"))
        time.sleep(2.1)
        self.origin.proc.terminate()
        self.origin.proc.wait()
        r = h.curl("-si", self.origin.url("/script/mr"), check=False)
        self.assertEqual(h.status_of(r.stdout), 504)
        r = h.curl("-si", self.origin.url("/script/plain"), check=False)
        self.assertEqual(h.status_of(r.stdout), 200)  # stale-if-error allows it


class Restart(h.IntegrationTest):
    """Hits survive a restart through the disk tier."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.origin = h.TestOrigin(cls.procs)

    def test_restart_serves_hits_from_disk(self):
        disk = os.path.join(self.tmp, "disk")
        cfg = f'[cache]\ndisk_dir = "{disk}"\ndisk_size = 67108864\nsegment_size = 4194304\nmax_object_size = 1048576\n'
        op = h.Outpost(self.procs, self.tmp, extra_config=cfg).start()
        bodies = {}
        for i in range(20):
            body = f"object {i} " + "z" * (i * 997)
            self.origin.script(f"/script/disk{i}", headers=[["Cache-Control", "max-age=600"]], body=body)
            bodies[i] = body.encode()
            h.curl(self.origin.url(f"/script/disk{i}"))
        self.assertEqual(op.stop(), 0)
        op2 = h.Outpost(self.procs, self.tmp, extra_config=cfg)
        op2.start()
        for i in range(20):
            r = h.curl("-si", self.origin.url(f"/script/disk{i}"))
            _, hh, b = parse(r.stdout)
            self.assertEqual(b, bodies[i])
            self.assertEqual(hh["x-cache"], "HIT from outpost-test", i)
        for i in range(20):
            self.assertEqual(self.origin.count(f"/script/disk{i}"), 1)
        lines = op2.access_lines(wait_for=40)
        self.assertTrue(any(" TCP_HIT/200 " in l for l in lines), "\n".join(lines))
        self.assertEqual(op2.stop(), 0)

        # A record damaged on disk while Outpost runs is never served: the read check fails,
        # the request becomes TCP_SWAPFAIL_MISS and the origin's copy is fetched again.
        op3 = h.Outpost(self.procs, self.tmp, extra_config=cfg)
        op3.start()
        marker = b"object 17 "
        damaged = False
        for root, _, files in os.walk(disk):
            for name in files:
                path = os.path.join(root, name)
                with open(path, "r+b") as f:
                    data = f.read()
                    at = data.find(marker)
                    if at >= 0:
                        f.seek(at + len(marker) + 100)
                        f.write(b"Y")
                        damaged = True
        self.assertTrue(damaged, "object 17 not found in the segment files")
        r = h.curl("-si", self.origin.url("/script/disk17"))
        _, hh, b = parse(r.stdout)
        self.assertEqual(b, bodies[17])
        self.assertEqual(self.origin.count("/script/disk17"), 2)
        deadline = time.time() + 5
        while time.time() < deadline:
            lines = op3.access_lines()
            if any(" TCP_SWAPFAIL_MISS/200 " in l and "/script/disk17" in l for l in lines):
                break
            time.sleep(0.1)
        self.assertTrue(any(" TCP_SWAPFAIL_MISS/200 " in l and "/script/disk17" in l for l in lines), "\n".join(lines))


if __name__ == "__main__":
    h.main()
