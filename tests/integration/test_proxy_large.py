#!/usr/bin/env python3
"""Streaming with back-pressure: a 100 MiB download to a slow client through Outpost is
byte-identical and does not grow the proxy's memory (peak RSS) by more than 16 MiB; a
large upload streams to the origin the same way."""
import os
import threading
import time

import harness as h

SIZE = 100 * 1024 * 1024


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Large(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.origin = h.TestOrigin(cls.procs)
        cls.nginx = h.Nginx(cls.procs, cls.tmp)
        cls.data = os.urandom(SIZE)
        cls.nginx.put_file("big.bin", cls.data)
        cls.outpost = h.Outpost(cls.procs, cls.tmp).start()

    def test_100mib_download_to_slow_client_bounded_memory(self):
        # Warm up the paths once so that one-time allocations do not count.
        h.curl("-o", "/dev/null", f"http://127.0.0.1:{h.NGINX_PORT}/big.bin")
        pid = self.outpost.proc.pid
        base = status_kib(pid, "VmRSS")
        peak = [base]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], status_kib(pid, "VmRSS"))
                time.sleep(0.05)

        t = threading.Thread(target=sample)
        t.start()
        out = os.path.join(self.tmp, "dl.bin")
        # A client reading at 40 MB/s while the origin could send at memory speed: without
        # back-pressure the proxy would buffer most of the file.
        h.curl("--limit-rate", "40M", "-o", out, f"http://127.0.0.1:{h.NGINX_PORT}/big.bin", timeout=120)
        stop.set()
        t.join()
        with open(out, "rb") as f:
            self.assertEqual(h.sha256(f.read()), h.sha256(self.data))
        os.unlink(out)
        growth_mib = (peak[0] - base) / 1024
        print(f"RSS before {base} KiB, peak during download {peak[0]} KiB, growth {growth_mib:.1f} MiB")
        if os.environ.get("OUTPOST_SANITIZED"):
            print("sanitizer build: quarantined memory inflates RSS, bound checked in the dev build only")
        else:
            self.assertLess(growth_mib, 16)

    def test_large_upload_streams_to_origin(self):
        path = os.path.join(self.tmp, "up.bin")
        body = self.data[: 20 * 1024 * 1024]
        with open(path, "wb") as f:
            f.write(body)
        import json
        r = h.curl("--data-binary", "@" + path, "-H", "Expect:", self.origin.url("/echo"), timeout=120)
        info = json.loads(r.stdout)
        self.assertEqual(info["body_length"], len(body))
        self.assertEqual(info["body_sha256"], h.sha256(body))


if __name__ == "__main__":
    h.main()
