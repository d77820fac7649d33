#!/usr/bin/env python3
"""Writes the seed corpus for proxy_session_fuzz: scripted clients and origin (input format at
the top of ../proxy_session_fuzz.cpp). Run from this folder: python3 make_proxy_session_seeds.py
(the files are committed; rerun only to change them). The found_* files beside them are inputs
the fuzzer found that add coverage (picked from a -set_cover_merge of a run), kept as they are."""
import os
import struct

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "proxy_session_fuzz")
O = "http://127.0.0.1:8080"

QUICK, NO_CACHE, SMALL, PLAIN = 1, 2, 4, 8


def data(op, which, b):
    if isinstance(b, str):
        b = b.encode()
    return bytes([op | which << 3]) + struct.pack(">H", len(b)) + b


def csend(i, b): return data(0, i, b)
def osend(n, b): return data(1, n, b)
def cshut(i): return bytes([2 | i << 3])
def cpause(i): return bytes([2 | (i | 4) << 3])
def cclose(i, reset=False): return bytes([3 | (i | (4 if reset else 0)) << 3])
def oshut(n): return bytes([4 | n << 3])
def opause(n): return bytes([4 | (n | 8) << 3])
def oclose(n, reset=False): return bytes([5 | (n | (8 if reset else 0)) << 3])
def wait(ms): return bytes([6, ms])
def shutdown(grace_ms): return bytes([6 | 1 << 3, grace_ms])
def ofill(n, pages): return bytes([7 | n << 3, pages])  # pages of 4 KiB


def get(path, extra="", method="GET", version="1.1", host="127.0.0.1:8080"):
    return f"{method} http://{host}{path} HTTP/{version}\r\nHost: {host}\r\n{extra}\r\n"


def resp(status, headers="", body="", reason="X"):
    return f"HTTP/1.1 {status} {reason}\r\n{headers}\r\n{body}"


ok5 = resp(200, "Cache-Control: max-age=60\r\nContent-Length: 5\r\n", "hello")
seeds = {
    "miss_then_hit": [0, csend(0, get("/a")), osend(0, ok5), csend(1, get("/a"))],
    "head": [0, csend(0, get("/h", method="HEAD")), osend(0, resp(200, "Content-Length: 100\r\nCache-Control: max-age=60\r\n")),
             csend(0, get("/h")), osend(0, resp(200, "Content-Length: 3\r\n", "abc"))],
    "post_chunked": [0, csend(0, "POST " + O + "/p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=\"q\"\r\nwiki\r\n"),
                     csend(0, "0\r\nTrailer: 1\r\n\r\n"), osend(0, resp(201, "Content-Length: 0\r\n")),
                     csend(0, get("/p")), osend(0, resp(200, "Content-Length: 0\r\n"))],
    "post_length_early_answer": [0, csend(0, "POST " + O + "/e HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc"),
                                 osend(0, resp(413, "Connection: close\r\nContent-Length: 3\r\n", "big")),
                                 oshut(0), csend(0, "d" * 97)],
    "pipelined_keepalive": [0, csend(0, get("/1") + get("/2") + get("/3", method="HEAD")),
                            osend(0, resp(200, "Content-Length: 1\r\n", "1")), osend(0, resp(200, "Content-Length: 1\r\n", "2")),
                            osend(0, resp(200, "Content-Length: 7\r\n")), csend(1, get("/1"))],
    "connect_tunnel": [0, csend(0, "CONNECT 127.0.0.1:8443 HTTP/1.1\r\nHost: 127.0.0.1:8443\r\n\r\nearly"),
                       osend(0, "\x16\x03\x01 server hello"), csend(0, "client data"), oshut(0), cshut(0)],
    "range_on_hit": [0, csend(0, get("/r")), osend(0, resp(200, "Cache-Control: max-age=60\r\nContent-Length: 10\r\n", "0123456789")),
                     csend(0, get("/r", "Range: bytes=2-4,1-3,-2\r\n")), csend(1, get("/r", "Range: bytes=7-\r\nIf-Range: \"x\"\r\n"))],
    "revalidate_304": [0, csend(0, get("/v")),
                       osend(0, resp(200, "Cache-Control: max-age=0\r\nETag: \"e1\"\r\nLast-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Length: 3\r\n", "old")),
                       csend(0, get("/v", "If-None-Match: \"e1\"\r\n")), osend(0, resp(304, "ETag: \"e1\"\r\nCache-Control: max-age=60\r\n")),
                       csend(1, get("/v", "If-Modified-Since: Mon, 01 Jan 2024 00:00:00 GMT\r\n"))],
    "collapsed_forwarding": [0, csend(0, get("/c")), csend(1, get("/c")), csend(2, get("/c")),
                             osend(0, resp(200, "Cache-Control: max-age=60\r\nContent-Length: 8\r\n", "part")),
                             osend(0, "rest"), csend(3, get("/c"))],
    "no_body_statuses_with_bodies": [0, csend(0, get("/n")), osend(0, resp(204, "Content-Length: 5\r\n", "hello")),
                                     csend(1, get("/m")), osend(0, resp(304, "Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\n\r\n"))],
    "interim_responses": [0, csend(0, "PUT " + O + "/i HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"),
                          osend(0, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n"),
                          csend(0, "ok"), osend(0, resp(200, "Content-Length: 0\r\n")),
                          csend(0, get("/i", version="1.0")), osend(0, "HTTP/1.1 102 Processing\r\n\r\n" + resp(200, "Content-Length: 0\r\n"))],
    "chunked_extensions_trailers": [0, csend(0, get("/k")),
                                    osend(0, resp(200, "Transfer-Encoding: chunked\r\nCache-Control: max-age=60\r\n",
                                                  "3;a=b;c=\"d;e\"\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n")),
                                    csend(1, get("/k", version="1.0"))],
    "close_delimited": [0, csend(0, get("/d")), osend(0, "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n\r\nbody until close"),
                        oclose(0), csend(0, get("/d", version="1.0"))],
    "bad_lengths": [0, csend(0, get("/b1")), osend(0, resp(200, "Content-Length: 5, 6\r\n", "hello")),
                    csend(1, get("/b2")), osend(0, resp(200, "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n")),
                    csend(2, get("/b3")), osend(0, resp(200, "Content-Length: -1\r\n")),
                    csend(3, get("/b4")), osend(0, "HTTP/1.1 999 Big\r\n\r\n")],
    "gzip_chunked_to_http10": [0, csend(0, get("/z", version="1.0")),
                               osend(0, resp(200, "Transfer-Encoding: gzip, chunked\r\n", "2\r\nzz\r\n0\r\n\r\n")),
                               csend(1, get("/z2", version="1.0")), osend(0, resp(200, "Transfer-Encoding: chunked\r\n", "2\r\nzz\r\n0\r\n\r\n"))],
    "stale_while_revalidate": [0, csend(0, get("/s")),
                               osend(0, resp(200, "Cache-Control: max-age=0, stale-while-revalidate=60\r\nETag: \"s\"\r\nContent-Length: 2\r\n", "s1")),
                               csend(1, get("/s")), osend(0, resp(304, "ETag: \"s\"\r\n")), csend(2, get("/s"))],
    "header_timeout": [QUICK, csend(0, "GET " + O + "/t HTTP/1.1\r\nHos"), wait(30)],
    "origin_read_timeout": [QUICK, csend(0, get("/slow")), osend(0, resp(200, "Content-Length: 10\r\n", "12")), wait(30)],
    "small_limits": [SMALL, csend(0, get("/l", "X-Long: " + "a" * 1100 + "\r\n")),
                     csend(1, "POST " + O + "/big HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + "b" * 100),
                     csend(2, get("/x")), csend(3, get("/y"))],
    "scripted_names": [0, csend(0, get("/", host="multi.test:8080") + get("/", host="fail.test:8080")),
                       osend(0, resp(200, "Content-Length: 0\r\n")),
                       csend(1, get("/", host="sync.test:8080")), osend(0, resp(200, "Content-Length: 0\r\n")),
                       csend(2, get("/", host="deny.test:8080")), csend(3, get("/", host="none.test:8080")),
                       csend(3, get("/", host="denied.test"))],
    "vary_purge": [0, csend(0, get("/vy", "Accept-Encoding: gzip\r\n")),
                   osend(0, resp(200, "Vary: Accept-Encoding\r\nCache-Control: max-age=60\r\nContent-Length: 1\r\n", "g")),
                   csend(1, get("/vy", "Accept-Encoding: br\r\n")), osend(0, resp(200, "Vary: *\r\nContent-Length: 1\r\n", "b")),
                   csend(2, get("/vy", method="PURGE")), csend(2, get("/vy", "Accept-Encoding: gzip\r\n")), osend(0, resp(200, "Content-Length: 1\r\n", "n"))],
    "slow_client_large_body": [0, csend(0, get("/big")), cpause(0),
                               osend(0, resp(200, "Cache-Control: max-age=60\r\nContent-Length: 401408\r\n")),
                               ofill(0, 50), ofill(0, 47), csend(1, get("/big")), ofill(0, 1), cpause(0)],
    "slow_client_not_stored": [QUICK, csend(0, get("/ns")), cpause(0),
                               osend(0, resp(200, "Cache-Control: no-store\r\nContent-Length: 401408\r\n")),
                               ofill(0, 98), wait(30)],
    "trace_options": [0, csend(0, get("/tr", "Max-Forwards: 0\r\nCookie: c=1\r\n", method="TRACE")),
                      csend(0, get("/op", "Max-Forwards: 0\r\n", method="OPTIONS")),
                      csend(0, "OPTIONS * HTTP/1.1\r\n\r\nGET /health HTTP/1.1\r\n\r\n")],
    "aborts_both_sides": [0, csend(0, get("/ab")), osend(0, resp(200, "Content-Length: 10\r\n", "12345")),
                          cclose(0, True), csend(1, get("/ab2")), oclose(0, True), csend(2, get("/ab3")), cshut(2)],
    "loops_and_bad_requests": [PLAIN, csend(0, get("/", host="127.0.0.1:3128")), csend(1, get("/", "Via: 1.1 outpost\r\n")),
                               csend(2, "GET http://127.0.0.1:8080/ HTTP/1.1\r\nHost: a\r\n b\r\n\r\n"),
                               csend(3, "BREW ftp://127.0.0.1:8080/ HTTP/2.0\r\n\r\n")],
    "shutdown_while_busy": [QUICK, csend(0, get("/g")), csend(1, get("/g2")), osend(0, resp(200, "Content-Length: 4\r\n", "ab")),
                            csend(2, get("/idle")), osend(0, resp(200, "Content-Length: 0\r\n")),
                            shutdown(10), osend(1, "cd"), wait(15)],
    "websocket_tunnel": [0, csend(0, get("/ws", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: a\r\n")
                                  + "\x81\x85abcd"),
                         osend(0, resp(101, "Upgrade: websocket\r\nConnection: Upgrade\r\n", "\x81\x02hi")),
                         csend(0, "more"), osend(0, "\x88\x00"), oshut(0), cshut(0)],
    "websocket_refused_then_plain": [0, csend(0, get("/wr", "Upgrade: websocket\r\nConnection: upgrade\r\n")),
                                     osend(0, resp(403, "Content-Length: 2\r\n", "no")),
                                     csend(1, get("/wr2", "Upgrade: h2c\r\nConnection: Upgrade\r\n")),
                                     osend(0, resp(101, "Upgrade: h2c\r\nConnection: Upgrade\r\n"))],
    "extension_methods": [0, csend(0, "BREW " + O + "/pot HTTP/1.1\r\nContent-Length: 3\r\n\r\ntea"),
                          osend(0, resp(418, "Content-Length: 0\r\n")),
                          csend(0, "get " + O + "/x HTTP/1.1\r\n\r\nPROPFIND " + O + "/d HTTP/1.1\r\n\r\n"),
                          osend(0, resp(200, "Content-Length: 0\r\n")), osend(0, resp(207, "Content-Length: 0\r\n"))],
    "no_cache_unsafe_invalidate": [NO_CACHE, csend(0, "DELETE " + O + "/u HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
                                   osend(0, resp(200, "Content-Location: /u\r\nContent-Length: 0\r\n"))],
}

os.makedirs(out, exist_ok=True)
for name, parts in seeds.items():
    blob = bytes([parts[0]]) + b"".join(parts[1:])
    with open(os.path.join(out, name), "wb") as f:
        f.write(blob)
print(f"wrote {len(seeds)} seeds to {out}")
