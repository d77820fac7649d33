#!/usr/bin/env python3
"""The benchmark suite behind bench/run: starts every server on loopback under a temporary
directory, runs the suites, stops everything by PID and writes bench/results/<date>/report.md,
raw.json and PNG plots. bench/run installs the packages, builds Outpost in Release and runs this
inside a private network namespace (only loopback exists there).

Usage: main.py [--quick] [--only speed,hitrate,dns,scale] [--out DIR] [--build DIR]"""
import argparse
import datetime
import importlib
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

# section name -> module with run_section(ctx) -> Markdown
SECTIONS = {"speed": "speed", "hitrate": "hitrate", "dns": "dns_suite", "scale": "scale"}


def header(ctx, args, started, took, versions):
    m = common.machine()
    mode = "quick (1 run per figure, shorter runs)" if ctx.quick else "full (median of 3 runs per figure)"
    lines = [
        f"# Outpost benchmark report, {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"- Machine: {m['cores']} cores, {m['model']}, {m['memory_mib']} MiB, Linux {m['kernel']}, Debian {m['debian']}.",
        f"- Mode: {mode}; took {took / 60:.1f} min. Command: `bench/run{' --quick' if ctx.quick else ''}"
        f"{' --only ' + args.only if args.only else ''}`.",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".",
        "- Everything runs on loopback inside a private network namespace; each server has its own config"
        " under a temporary directory (kept in raw.json's neighbour `configs/`).",
        "- Ratios are Outpost's figure divided by the peer's, on the same machine, in the same run, with the"
        " same object set and memory budget; ↓ marks rows where Outpost is behind.",
        "",
    ]
    return "\n".join(lines)


def behind(body):
    """Every table row where a ratio is marked ↓ (Outpost behind the peer), as a bullet list:
    '<section> / <table>: <row label> — <column> <ratio>'."""
    out, section, title, heads, prev = [], "", "", [], []

    def is_figure(c):
        return bool(c) and (c[0].isdigit() or c[0] in "—-")

    for line in "\n".join(body).splitlines():
        if line.startswith("## "):
            section, title = line[3:].strip(), ""
        elif line.startswith("### "):
            title = line[4:].strip()
        elif line.startswith("**") and "**" in line[2:]:
            title = line[2:line.index("**", 2)]
        elif line.startswith("|---"):
            heads = prev
        elif line.startswith("| "):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            prev = cells
            if "↓" in line:
                n = next((i for i, c in enumerate(cells) if i > 0 and is_figure(c)), 1)
                label = ", ".join(c for c in cells[:max(n, 1)] if c)
                marks = [f"{heads[i] if i < len(heads) else '?'} {c}" for i, c in enumerate(cells) if "↓" in c]
                out.append(f"- {section} / {title}: {label} — " + "; ".join(marks))
    return out


def keep_configs(ctx):
    """Copies each server's config files next to the report, so every figure can be rerun by hand."""
    dst = os.path.join(ctx.out, "configs")
    for dirpath, _, files in os.walk(ctx.work):
        for f in files:
            if f.endswith((".conf", ".toml", ".yaml", ".lua")):
                rel = os.path.relpath(os.path.join(dirpath, f), ctx.work)
                os.makedirs(os.path.join(dst, os.path.dirname(rel)), exist_ok=True)
                shutil.copy(os.path.join(dirpath, f), os.path.join(dst, rel))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one short run per figure (under 5 minutes)")
    ap.add_argument("--only", default="", help="comma-separated sections: " + ",".join(SECTIONS))
    ap.add_argument("--out", default="", help="result directory (default bench/results/<date>[-quick])")
    ap.add_argument("--trace", default=None, help='also replay this "timestamp key size" trace (hitrate)')
    ap.add_argument("--build", default=os.path.join(common.ROOT, "build", "release"))
    ap.add_argument("--before", default=None,
                    help="another outpost binary (an older build): the hit-rate section's ranges and variants "
                         "rows run it beside this build's")
    args = ap.parse_args()
    wanted = [s for s in args.only.split(",") if s] or list(SECTIONS)
    for s in wanted:
        if s not in SECTIONS:
            ap.error(f"unknown section {s!r}; known: {', '.join(SECTIONS)}")
    started = datetime.datetime.utcnow()
    out = args.out or os.path.join(common.ROOT, "bench", "results",
                                   started.strftime("%Y-%m-%d") + ("-quick" if args.quick else ""))
    os.makedirs(out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="outpost-bench.")
    os.chmod(work, 0o755)
    ctx = common.Ctx(args.quick, out, work, os.path.abspath(args.build),
                      os.path.abspath(args.trace) if args.trace else None,
                      os.path.abspath(args.before) if args.before else None)
    versions = common.versions(ctx)
    ctx.raw["versions"] = versions
    ctx.raw["machine"] = common.machine()
    body = []
    t0 = time.time()
    try:
        for name in wanted:
            ctx.log(f"section {name}")
            module = importlib.import_module(SECTIONS[name])
            s0 = time.time()
            body.append(module.run_section(ctx))
            ctx.raw.setdefault("seconds", {})[name] = round(time.time() - s0, 1)
            ctx.log(f"section {name} done in {time.time() - s0:.0f} s")
            common.save_raw(ctx)
        keep_configs(ctx)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lag = behind(body)
    summary = ("## Where Outpost is behind\n\nEvery row of the tables below with a ratio marked ↓ (for req/s and"
               " hit ratios Outpost's figure is lower; for latency, CPU and memory it is higher):\n\n"
               + ("\n".join(lag) if lag else "- nowhere in this run") + "\n")
    report = header(ctx, args, started, time.time() - t0, versions) + "\n" + summary + "\n" + "\n".join(body)
    path = os.path.join(out, "report.md")
    with open(path, "w") as f:
        f.write(report)
    common.save_raw(ctx)
    ctx.log(f"report: {path}")


if __name__ == "__main__":
    main()
