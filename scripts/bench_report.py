#!/usr/bin/env python3
"""Results helper for scripts/bench (standard library only).

Subcommands
  record RUNS key=value...   append one run record (a JSON line) to RUNS
  wrk FILE                   print the parsed summary of one wrk output file
  report --runs RUNS --out DIR [--meta key=value ...] [--plot-case CASE]
                             write DIR/results.json, DIR/results.md, gnuplot
                             data + DIR/plot/plot.gp, and print the table

A wrk output file is what `wrk -s scripts/wrk/*.lua` prints: wrk's normal
summary, then the BENCH_HGRM_BEGIN/END percentile table and a BENCH_JSON line
(see scripts/wrk/report.lua).
"""

import argparse
import datetime
import json
import math
import os
import re
import shutil
import subprocess
import sys

SERVER_COLORS = {
    "peregrine": "#d95f02",
    "peregrine-base": "#fdae6b",
    "nginx": "#1b9e77",
    "h2o": "#7570b3",
    "tokio-uring": "#1f78b4",
}
FALLBACK_COLORS = ["#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]
CLIENT_BOUND_PCT = 90.0  # wrk this busy: the load generator may be the limit
NOISY_PCT = 20.0  # this much CPU used by others on the server or wrk CPU: noisy
BASE = "peregrine-base"  # the --baseline binary, compared with "peregrine"
CPU_RISE_LIMIT = 0.03  # --baseline flags a case whose CPU per request rose more


# ---------------------------------------------------------------- records

def parse_value(text):
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def cmd_record(args):
    rec = {}
    for item in args.fields:
        key, sep, value = item.partition("=")
        if not sep:
            sys.exit(f"record: expected key=value, got {item!r}")
        rec[key] = parse_value(value)
    with open(args.runs, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec, sort_keys=True) + "\n")
    return 0


def load_runs(path):
    runs = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line:
                    runs.append(json.loads(line))
    return runs


# ---------------------------------------------------------------- wrk output

def parse_wrk(path):
    """Parse one wrk output file; returns a dict (empty on failure)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return {}
    out = {}
    m = re.search(r"^BENCH_JSON (\{.*\})\s*$", text, re.M)
    if m:
        try:
            out = json.loads(m.group(1))
        except json.JSONDecodeError:
            out = {}
    # wrk's own summary lines, as a cross-check and a fallback.
    m = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if m:
        out["wrk_rps"] = float(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m and "errors" not in out:
        out["errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        out.setdefault("errors", {})["status"] = int(m.group(1))
    hgrm = []
    block = re.search(r"^BENCH_HGRM_BEGIN\n(.*?)^BENCH_HGRM_END", text, re.M | re.S)
    if block:
        for line in block.group(1).splitlines():
            parts = line.split()
            if len(parts) == 4 and not line.startswith("#"):
                try:
                    hgrm.append([float(parts[0]), float(parts[1]), int(parts[2]),
                                 float("inf") if parts[3] == "inf" else float(parts[3])])
                except ValueError:
                    pass
        out["hgrm_text"] = block.group(1)
    out["hgrm"] = hgrm
    return out


def cmd_h2load(args):
    """Turn h2load's output (and its --log-file of per-request times) into the
    wrk-style summary and BENCH_JSON line the rest of the report reads."""
    try:
        with open(args.file, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as e:
        print(f"h2load output unreadable: {e}", file=sys.stderr)
        return 1
    m = re.search(r"^finished in ([\d.]+)(us|ms|s),", text, re.M)
    r = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", text, re.M)
    if not m or not r:
        sys.stdout.write(text)
        print("h2load output has no summary", file=sys.stderr)
        return 1
    dur_s = float(m.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[m.group(2)]
    total, started, done, ok, failed, errored, timeout = map(int, r.groups())
    st = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text, re.M)
    bad = int(st.group(3)) + int(st.group(4)) if st else 0
    tr = re.search(r"^traffic: .*?\((\d+)\) total", text, re.M)
    lat = []
    try:
        with open(args.log, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split("\t")
                if len(parts) >= 3:
                    try:
                        lat.append(int(parts[2]))
                    except ValueError:
                        pass
    except OSError:
        pass
    lat.sort()

    def pct(p):
        if not lat:
            return None
        return lat[min(len(lat) - 1, int(len(lat) * p / 100.0))]

    out = {
        "duration_us": int(dur_s * 1e6),
        "requests": ok,
        "bytes": int(tr.group(1)) if tr else None,
        "connections": int(args.connections),
        "pipeline": int(args.streams),
        "latency_source": "h2load",
        "latency_samples": len(lat),
        "latency_us": {k: pct(float(k)) for k in ("50", "75", "90", "99", "99.9", "99.99")},
        "latency_max_us": lat[-1] if lat else None,
        "latency_mean_us": sum(lat) / len(lat) if lat else None,
        "errors": {"connect": 0, "read": failed + errored, "write": 0, "timeout": timeout,
                   "status": bad},
    }
    sys.stdout.write(text)
    print(f"Requests/sec: {ok / dur_s if dur_s else 0:.2f}")
    print("BENCH_JSON " + json.dumps(out))
    return 0 if done > 0 else 1


def cmd_wrk(args):
    data = parse_wrk(args.file)
    data.pop("hgrm_text", None)
    print(json.dumps(data, indent=2))
    return 0 if "requests" in data else 1


# ---------------------------------------------------------------- results

def num(x):
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def build_result(run, out_dir):
    res = {k: run.get(k) for k in ("server", "case", "status", "reason", "kind", "rep")}
    res["status"] = res["status"] or "failed"
    if run.get("kind") == "memory":
        n = num(run.get("established")) or 0
        before, during = num(run.get("mem_before_kb")), num(run.get("mem_during_kb"))
        res.update({
            "connections_requested": run.get("connections"),
            "connections_established": run.get("established"),
            "connections_closed_by_server": run.get("closed_by_peer"),
            "server_side_established": run.get("server_established"),
            "memory_metric": run.get("mem_metric"),
            "memory_before_bytes": before * 1024 if before is not None else None,
            "memory_during_bytes": during * 1024 if during is not None else None,
            "bytes_per_connection": None,
        })
        if res["status"] == "ok" and before is not None and during is not None and n > 0:
            res["bytes_per_connection"] = (during - before) * 1024.0 / n
        return res

    res.update({"connections": run.get("connections"), "pipeline": run.get("pipeline"),
                "method": run.get("method"), "path": run.get("path"),
                "raw": run.get("raw")})
    if res["status"] != "ok":
        return res
    w = parse_wrk(os.path.join(out_dir, run["raw"])) if run.get("raw") else {}
    if "requests" not in w:
        res["status"] = "failed"
        res["reason"] = "could not parse wrk output (see %s)" % run.get("raw")
        return res
    dur_s = w["duration_us"] / 1e6 if w.get("duration_us") else None
    reqs = w["requests"]
    rps = reqs / dur_s if dur_s else None
    lat = w.get("latency_us") or {}

    def ms(v):
        return v / 1000.0 if isinstance(v, (int, float)) else None

    errs = w.get("errors") or {}
    ticks, clk = num(run.get("cpu_ticks")), num(run.get("clk_tck"))
    cpu_s = ticks / clk if ticks is not None and clk else None
    client_cpu = None
    if num(run.get("client_user_s")) is not None and num(run.get("client_wall_s")):
        client_cpu = 100.0 * (run["client_user_s"] + run.get("client_sys_s", 0)) / run["client_wall_s"]
    # Load on the two pinned CPUs that was not ours (other processes, or
    # interrupt time the kernel did not bill to the process).
    other_server = other_client = steal = None
    total = num(run.get("server_cpu_total_ticks"))
    if total and ticks is not None and not run.get("same_cpu"):
        other_server = max(0.0, 100.0 * (run.get("server_cpu_busy_ticks", 0) - ticks) / total)
        steal = 100.0 * run.get("server_cpu_steal_ticks", 0) / total
    ctotal = num(run.get("client_cpu_total_ticks"))
    if ctotal and clk and client_cpu is not None and not run.get("same_cpu"):
        wrk_ticks = (run["client_user_s"] + run.get("client_sys_s", 0)) * clk
        other_client = max(0.0, 100.0 * (run.get("client_cpu_busy_ticks", 0) - wrk_ticks) / ctotal)
    noisy = any(v is not None and v >= NOISY_PCT for v in (other_server, other_client, steal))
    res.update({
        "requests": reqs,
        "duration_s": dur_s,
        "rps": rps,
        "bytes": w.get("bytes"),
        "latency_source": w.get("latency_source"),
        "latency_samples": w.get("latency_samples"),
        "latency_ms": {
            "p50": ms(lat.get("50")), "p75": ms(lat.get("75")), "p90": ms(lat.get("90")),
            "p99": ms(lat.get("99")), "p99.9": ms(lat.get("99.9")),
            "p99.99": ms(lat.get("99.99")),
            "max": ms(w.get("latency_max_us")), "mean": ms(w.get("latency_mean_us")),
        },
        "wrk_corrected_latency_ms": {k: ms(v) for k, v in (w.get("wrk_latency_us") or {}).items()},
        "non_2xx_3xx": errs.get("status", 0),
        "socket_errors": {k: errs.get(k, 0) for k in ("connect", "read", "write", "timeout")},
        "server_cpu_seconds": cpu_s,
        "server_cpu_us_per_request": cpu_s * 1e6 / reqs if cpu_s is not None and reqs else None,
        "server_cpu_pct": 100.0 * cpu_s / dur_s if cpu_s is not None and dur_s else None,
        "client_cpu_pct": client_cpu,
        "client_bound": client_cpu is not None and client_cpu >= CLIENT_BOUND_PCT,
        "other_load_server_cpu_pct": other_server,
        "other_load_client_cpu_pct": other_client,
        "steal_server_cpu_pct": steal,
        "noisy": noisy,
        "hgrm": w.get("hgrm", []),
    })
    if w.get("hgrm_text"):
        hpath = os.path.splitext(run["raw"])[0] + ".hgrm"
        with open(os.path.join(out_dir, hpath), "w", encoding="utf-8") as f:
            f.write(w["hgrm_text"])
        res["hgrm_file"] = hpath
    return res


def median(values):
    v = sorted(values)
    n = len(v)
    if n == 0:
        return None
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2.0


# Per-run fields that are replaced by their median over the runs.
MEDIAN_FIELDS = ("rps", "server_cpu_us_per_request", "server_cpu_pct", "client_cpu_pct",
                 "bytes_per_connection", "duration_s")


def aggregate(results):
    """One result per (server, case): with several runs (--runs N), the run
    with the median req/s (or memory) supplies the latency curve and raw file,
    MEDIAN_FIELDS and the latency percentiles are medians over the good runs,
    error counts are summed, and `per_run` keeps each run's figures."""
    groups = {}
    for r in results:
        groups.setdefault((r["server"], r["case"]), []).append(r)
    out = []
    for rs in groups.values():
        ok = [r for r in rs if r["status"] == "ok"]
        if len(rs) == 1 or not ok:
            first = dict(rs[0])
            first["runs"], first["runs_ok"] = len(rs), len(ok)
            out.append(first)
            continue
        field = "bytes_per_connection" if rs[0].get("kind") == "memory" else "rps"
        by_value = sorted(ok, key=lambda r: num(r.get(field)) or 0.0)
        agg = dict(by_value[(len(by_value) - 1) // 2])
        agg["runs"], agg["runs_ok"] = len(rs), len(ok)
        agg["per_run"] = [{"rep": r.get("rep"), "rps": r.get("rps"),
                           "server_cpu_us_per_request": r.get("server_cpu_us_per_request"),
                           "bytes_per_connection": r.get("bytes_per_connection")} for r in ok]
        for f in MEDIAN_FIELDS:
            vals = [num(r.get(f)) for r in ok if num(r.get(f)) is not None]
            if vals:
                agg[f] = median(vals)
        if "latency_ms" in agg:
            agg["latency_ms"] = {k: median([r["latency_ms"][k] for r in ok
                                            if num(r["latency_ms"].get(k)) is not None])
                                 for k in agg["latency_ms"]}
            agg["requests"] = sum(r["requests"] for r in ok)
            agg["non_2xx_3xx"] = sum(r["non_2xx_3xx"] for r in ok)
            agg["socket_errors"] = {k: sum(r["socket_errors"][k] for r in ok)
                                    for k in agg["socket_errors"]}
            # Marked when most runs were.
            agg["noisy"] = 2 * sum(bool(r.get("noisy")) for r in ok) > len(ok)
            agg["client_bound"] = 2 * sum(bool(r.get("client_bound")) for r in ok) > len(ok)
        if len(ok) < len(rs):
            bad = next(r for r in rs if r["status"] != "ok")
            agg["reason"] = (f"{len(rs) - len(ok)} of {len(rs)} runs failed "
                             f"({bad.get('reason') or bad['status']}); medians of the rest")
        out.append(agg)
    return out


def baseline_rows(results, cases, new="peregrine", base=BASE):
    """peregrine / peregrine-base per case: req/s, CPU per request, memory."""
    by = {(r["server"], r["case"]): r for r in results}
    rows = []
    for case in cases:
        n, b = by.get((new, case)), by.get((base, case))
        if not n or not b:
            continue
        row = {"case": case, "kind": n.get("kind") or "wrk",
               "status": "ok" if n["status"] == b["status"] == "ok" else "not measured"}
        for key, field in (("rps", "rps"), ("cpu_us_per_request", "server_cpu_us_per_request"),
                           ("bytes_per_connection", "bytes_per_connection")):
            x, y = num(n.get(field)), num(b.get(field))
            row[key] = {"base": y, "new": x, "ratio": x / y if x is not None and y else None}
        # Runs pair up by repetition number (base and new ran back to back).
        cpu_new = {p["rep"]: num(p["server_cpu_us_per_request"]) for p in n.get("per_run", [])}
        cpu_base = {p["rep"]: num(p["server_cpu_us_per_request"]) for p in b.get("per_run", [])}
        row["cpu_ratio_per_run"] = [cpu_new[k] / cpu_base[k]
                                    for k in sorted(k for k in cpu_new if k is not None)
                                    if cpu_new[k] is not None and cpu_base.get(k)]
        ratio = row["cpu_us_per_request"]["ratio"]
        row["cpu_rose"] = ratio is not None and ratio > 1.0 + CPU_RISE_LIMIT
        row["noisy"] = bool(n.get("noisy") or b.get("noisy"))
        rows.append(row)
    return rows


def baseline_table(rows):
    header = ["case", "base req/s", "new req/s", "new/base", "base cpu us/req",
              "new cpu us/req", "new/base", "cpu new/base per run", "flag"]
    out = []
    for r in rows:
        if r["status"] != "ok":
            out.append([r["case"]] + ["-"] * 7 + ["not measured"])
            continue
        if r["kind"] == "memory":
            m = r["bytes_per_connection"]
            out.append([r["case"] + " (B/idle conn)", fmt_bytes(m["base"]), fmt_bytes(m["new"]),
                        fmt_ratio(m["ratio"]), "-", "-", "-", "-", ""])
            continue
        q, c = r["rps"], r["cpu_us_per_request"]
        flag = ""
        if r["cpu_rose"]:
            flag = f"CPU/req +{(c['ratio'] - 1) * 100:.1f}%" + (" (noisy)" if r["noisy"] else "")
        out.append([r["case"], fmt_int(q["base"]), fmt_int(q["new"]), fmt_ratio(q["ratio"]),
                    fmt_us(c["base"]), fmt_us(c["new"]), fmt_ratio(c["ratio"]),
                    " ".join(f"{x:.2f}" for x in r["cpu_ratio_per_run"]) or "-", flag])
    if not any(len(r["cpu_ratio_per_run"]) > 1 for r in rows):
        # One run: the per-run column would repeat the median.
        header = header[:7] + header[8:]
        out = [row[:7] + row[8:] for row in out]
    return header, out


def baseline_summary(rows):
    rose = [r["case"] for r in rows if r["cpu_rose"]]
    limit = f"{CPU_RISE_LIMIT * 100:.0f}%"
    if rose:
        return f"CPU per request rose by more than {limit} in: " + ", ".join(rose) + "."
    return f"No case's CPU per request rose by more than {limit}."


def ratios(results, servers, cases, ref="peregrine"):
    """Peregrine / peer for rps, CPU per request and memory per connection."""
    by = {(r["server"], r["case"]): r for r in results}
    out = []
    if ref not in servers:
        return out
    for case in cases:
        mine = by.get((ref, case))
        if not mine or mine.get("status") != "ok":
            continue
        for peer in servers:
            if peer == ref:
                continue
            other = by.get((peer, case))
            if not other or other.get("status") != "ok":
                continue
            row = {"case": case, "peer": peer}
            for key, field in (("rps", "rps"), ("cpu_per_request", "server_cpu_us_per_request"),
                               ("memory_per_connection", "bytes_per_connection")):
                a, b = num(mine.get(field)), num(other.get(field))
                row[key] = a / b if a is not None and b else None
            out.append(row)
    return out


# ---------------------------------------------------------------- formatting

def fmt_ms(v):
    if v is None:
        return "-"
    if v < 1:
        return f"{v:.3f}"
    if v < 10:
        return f"{v:.2f}"
    if v < 100:
        return f"{v:.1f}"
    return f"{v:.0f}"


def fmt_int(v):
    return "-" if v is None else f"{v:,.0f}"


def fmt_us(v):
    if v is None:
        return "-"
    return f"{v:.2f}" if v < 10 else (f"{v:.1f}" if v < 100 else f"{v:.0f}")


def fmt_bytes(v):
    if v is None:
        return "-"
    if abs(v) >= 10 * 1024 * 1024:
        return f"{v / 1048576:.1f} MiB"
    if abs(v) >= 10 * 1024:
        return f"{v / 1024:.1f} KiB"
    return f"{v:.0f} B"


def fmt_rps_short(v):
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e4:
        return f"{v / 1e3:.0f}k"
    if v >= 1e3:
        return f"{v / 1e3:.1f}k"
    return f"{v:.0f}"


def fmt_ratio(v):
    return "-" if v is None else f"{v:.2f}x"


def table_rows(results, servers, cases, rat):
    by = {(r["server"], r["case"]): r for r in results}
    rby = {(x["case"], x["peer"]): x for x in rat}
    header = ["case", "server", "req/s", "p50", "p90", "p99", "p99.9", "non2xx",
              "sockerr", "cpu us/req", "B/idle conn", "P/x req/s", "P/x cpu", "P/x mem"]
    with_mem = any(r.get("kind") == "memory" for r in results)
    keep = [i for i, h in enumerate(header)
            if (rat or not h.startswith("P/x")) and (with_mem or h not in ("B/idle conn", "P/x mem"))]
    header, rows = table_rows_full(by, rby, header, servers, cases)
    return [header[i] for i in keep], [[r[i] for i in keep] for r in rows]


def table_rows_full(by, rby, header, servers, cases):
    rows = []
    for case in cases:
        for server in servers:
            r = by.get((server, case))
            if r is None:
                continue
            row = [case, server]
            if r["status"] != "ok":
                label = "n/a" if r["status"] == "n/a" else r["status"].upper()
                row += [label] + ["-"] * 11
                rows.append(row)
                continue
            ra = rby.get((case, server), {})
            if r.get("kind") == "memory":
                row += ["-"] * 8 + [fmt_bytes(r.get("bytes_per_connection")), "-", "-",
                                    fmt_ratio(ra.get("memory_per_connection"))]
            else:
                lat = r["latency_ms"]
                sock = sum(r["socket_errors"].values())
                rps = (fmt_int(r["rps"]) + ("*" if r.get("client_bound") else "")
                       + ("!" if r.get("noisy") else ""))
                row += [rps, fmt_ms(lat["p50"]), fmt_ms(lat["p90"]), fmt_ms(lat["p99"]),
                        fmt_ms(lat["p99.9"]), fmt_int(r["non_2xx_3xx"]), fmt_int(sock),
                        fmt_us(r["server_cpu_us_per_request"]), "-",
                        fmt_ratio(ra.get("rps")), fmt_ratio(ra.get("cpu_per_request")), "-"]
            rows.append(row)
    return header, rows


def render_text_table(header, rows, left=(0, 1), group=True):
    """Aligned columns (`left` ones left-aligned); with `group`, a blank line
    between cases."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)] if rows else [len(h) for h in header]

    def line(cells):
        out = []
        for i, c in enumerate(cells):
            out.append(str(c).ljust(widths[i]) if i in left else str(c).rjust(widths[i]))
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    lines = [line(header), sep]
    prev_case = None
    for r in rows:
        if group and prev_case is not None and r[0] != prev_case:
            lines.append("")
        prev_case = r[0]
        lines.append(line(r))
    return "\n".join(lines)


def render_md_table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" if i < 2 else "---:" for i in range(len(header))) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |")
    return "\n".join(out)


# ---------------------------------------------------------------- gnuplot

def color_for(server, i):
    return SERVER_COLORS.get(server, FALLBACK_COLORS[i % len(FALLBACK_COLORS)])


def gp_str(s):
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def write_plot(results, servers, cases, plot_case, out_dir, png_name, title):
    """Write data files and a gnuplot script; return the script path or None."""
    pdir = os.path.join(out_dir, "plot")
    os.makedirs(pdir, exist_ok=True)
    by = {(r["server"], r["case"]): r for r in results}
    tput_cases = [c for c in cases if any(
        by.get((s, c), {}).get("status") == "ok" and by[(s, c)].get("kind") != "memory" for s in servers)]
    mem_ok = [s for s in servers if by.get((s, "memory"), {}).get("status") == "ok"
              and by[(s, "memory")].get("bytes_per_connection") is not None]
    if plot_case not in tput_cases:
        plot_case = tput_cases[0] if tput_cases else None
    if not tput_cases and not mem_ok:
        return None

    gp = []
    gp.append("set terminal pngcairo size 1600,1000 enhanced font 'DejaVu Sans,11' background '#ffffff'")
    gp.append(f"set output {gp_str(os.path.join(out_dir, png_name))}")
    gp.append("set datafile missing 'NaN'")
    gp.append("set grid ytics lc rgb '#dddddd' lt 1")
    gp.append("set border 3; set tics nomirror")
    gp.append("set key top left opaque box lc rgb '#cccccc'")
    gp.append(f"set multiplot title {gp_str(title)} font ',15'")

    nsrv = len(servers)
    width = 0.8 / max(nsrv, 1)

    def bars(field, fname, ylabel, ptitle, fmt, yformat, pos):
        path = os.path.join(pdir, fname)
        with open(path, "w", encoding="utf-8") as f:
            f.write("# x case server value label\n")
            for ci, case in enumerate(tput_cases):
                for si, server in enumerate(servers):
                    r = by.get((server, case), {})
                    v = num(r.get(field)) if r.get("status") == "ok" else None
                    x = ci + (si - (nsrv - 1) / 2.0) * width
                    label = fmt(v) if v is not None else "n/a"
                    f.write(f"{x:.4f}\t{case}\t{server}\t{v if v is not None else 'NaN'}\t{label}\n")
        gp.append(f"set origin {pos[0]},{pos[1]}; set size {pos[2]},{pos[3]}")
        gp.append(f"set title {gp_str(ptitle)} font ',13'")
        gp.append("unset xlabel")
        gp.append(f"set ylabel {gp_str(ylabel)}")
        gp.append("set logscale y; unset logscale x")
        gp.append(f"set format y '{yformat}'")
        gp.append(f"set xrange [-0.6:{len(tput_cases) - 0.4}]")
        gp.append("set yrange [*:*]")
        gp.append("set xtics nomirror (" + ", ".join(f"{gp_str(c)} {i}" for i, c in enumerate(tput_cases))
                  + ") rotate by -20 font ',10'")
        gp.append(f"set boxwidth {width * 0.95:.4f} absolute")
        gp.append("set style fill solid 0.9 noborder")
        plots = []
        for si, server in enumerate(servers):
            col = color_for(server, si)
            cond = f'(strcol(3) eq {gp_str(server)} ? $4 : NaN)'
            plots.append(f"{gp_str(path)} using 1:{cond} with boxes lc rgb '{col}' title {gp_str(server)}")
            plots.append(f"{gp_str(path)} using 1:{cond}:5 with labels offset 0,0.7 font ',8' notitle")
        gp.append("plot " + ", \\\n     ".join(plots))
        gp.append("unset logscale y; set format y '%g'; unset xtics; set xtics nomirror norotate font ''")

    have_mem = bool(mem_ok)
    top_w = 0.62 if have_mem else 1.0
    # Panel 1: latency percentile spectrum.
    if plot_case:
        gp.append(f"set origin 0,0.49; set size {top_w},0.44")
        note = ""
        if any(by.get((s, plot_case), {}).get("pipeline", 1) not in (None, 1) for s in servers):
            note = " (per pipelined batch)"
        gp.append(f"set title {gp_str('Latency by percentile - ' + plot_case + note)} font ',13'")
        gp.append("set logscale x; set logscale y")
        gp.append("set xlabel 'percentile'")
        gp.append("set ylabel 'latency (ms)'")
        gp.append("set xtics ('0%%' 1, '50%%' 2, '90%%' 10, '99%%' 100, '99.9%%' 1000, "
                  "'99.99%%' 10000, '99.999%%' 100000, '99.9999%%' 1000000)")
        gp.append("set format y '%g'")
        gp.append("set key bottom right opaque box lc rgb '#cccccc'")
        plots = []
        xs, ys = [], []
        for si, server in enumerate(servers):
            r = by.get((server, plot_case), {})
            rows = [h for h in r.get("hgrm", []) if math.isfinite(h[3]) and h[0] > 0]
            if r.get("status") != "ok" or not rows:
                continue
            xs += [h[3] for h in rows]
            ys += [h[0] for h in rows]
            path = os.path.join(pdir, f"latency-{server}-{plot_case}.dat")
            with open(path, "w", encoding="utf-8") as f:
                f.write("# value_ms percentile total_count 1/(1-p)\n")
                for h in rows:
                    f.write(f"{h[0]}\t{h[1]}\t{h[2]}\t{h[3]}\n")
            lat = r["latency_ms"]
            label = f"{server}  (p50 {fmt_ms(lat['p50'])}, p99 {fmt_ms(lat['p99'])}, max {fmt_ms(lat['max'])} ms)"
            plots.append(f"{gp_str(path)} using 4:1 with steps lw 2.5 lc rgb '{color_for(server, si)}' "
                         f"title {gp_str(label)}")
        if plots:
            xmax = 10 ** math.ceil(math.log10(max(max(xs), 10)))
            ymin = 10 ** math.floor(math.log10(min(ys)))
            ymax = 10 ** math.ceil(math.log10(max(ys)))
            gp.append(f"set xrange [1:{xmax:g}]; set yrange [{ymin:g}:{ymax:g}]")
            gp.append("plot " + ", \\\n     ".join(plots))
        gp.append("unset logscale x; unset logscale y; unset xlabel")
        gp.append("set key top left opaque box lc rgb '#cccccc'")
    # Panel 2: memory per idle connection.
    if have_mem:
        path = os.path.join(pdir, "memory.dat")
        with open(path, "w", encoding="utf-8") as f:
            f.write("# x server bytes_per_conn label\n")
            for i, s in enumerate(mem_ok):
                v = by[(s, "memory")]["bytes_per_connection"]
                f.write(f"{i}\t{s}\t{v:.1f}\t\"{fmt_bytes(v)}\"\n")
        metric = by[(mem_ok[0], "memory")].get("memory_metric") or "RSS"
        n = by[(mem_ok[0], "memory")].get("connections_requested")
        gp.append("set origin 0.62,0.49; set size 0.38,0.44")
        gp.append("unset key")
        gp.append(f"set title {gp_str(f'Memory per idle keep-alive connection ({n} conns, {metric})')} font ',13'")
        gp.append("set ylabel 'bytes per connection'")
        gp.append(f"set xrange [-0.6:{len(mem_ok) - 0.4}]; set yrange [0:*]")
        gp.append("set xtics nomirror (" + ", ".join(f"{gp_str(s)} {i}" for i, s in enumerate(mem_ok)) + ")")
        gp.append("set boxwidth 0.6 absolute; set style fill solid 0.9 noborder")
        plots = []
        for si, server in enumerate(servers):
            if server not in mem_ok:
                continue
            cond = f'(strcol(2) eq {gp_str(server)} ? $3 : NaN)'
            plots.append(f"{gp_str(path)} using 1:{cond} with boxes lc rgb '{color_for(server, si)}' notitle")
        plots.append(f"{gp_str(path)} using 1:3:4 with labels offset 0,0.8 font ',10' notitle")
        gp.append("plot " + ", \\\n     ".join(plots))
        gp.append("unset xtics; set xtics nomirror")
        gp.append("set key top left opaque box lc rgb '#cccccc'")
    if tput_cases:
        bars("rps", "rps.dat", "requests/s (log scale)", "Throughput - requests/s (higher is better)",
             fmt_rps_short, "%.0s%c", (0, 0, 0.5, 0.47))
        bars("server_cpu_us_per_request", "cpu.dat", "server CPU µs per request (log scale)",
             "Server CPU time per request (lower is better)", fmt_us, "%g", (0.5, 0, 0.5, 0.47))
    gp.append("unset multiplot")
    script = os.path.join(pdir, "plot.gp")
    with open(script, "w", encoding="utf-8") as f:
        f.write("# Generated by scripts/bench_report.py; run: gnuplot plot.gp\n")
        f.write("\n".join(gp) + "\n")
    return script


# ---------------------------------------------------------------- report

def cmd_report(args):
    runs = load_runs(args.runs)
    meta = dict(kv.partition("=")[::2] for kv in args.meta)
    meta = {k: parse_value(v) for k, v in meta.items()}
    servers, cases = [], []
    for run in runs:
        if run.get("server") and run["server"] not in servers:
            servers.append(run["server"])
        if run.get("case") and run["case"] not in cases:
            cases.append(run["case"])
    if args.servers:
        servers = [s for s in args.servers.split(",") if s in servers] + [s for s in servers if s not in args.servers.split(",")]
    if args.cases:
        order = args.cases.split(",")
        cases = [c for c in order if c in cases] + [c for c in cases if c not in order]

    results = aggregate([build_result(r, args.out) for r in runs if r.get("server") and r.get("case")])
    rat = ratios(results, servers, cases)
    base_rows = baseline_rows(results, cases) if BASE in servers and "peregrine" in servers else []
    env_text = ""
    if args.env and os.path.exists(args.env):
        with open(args.env, encoding="utf-8", errors="replace") as f:
            env_text = f.read()

    doc = {
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "meta": meta,
        "environment": env_text,
        "servers": servers,
        "cases": cases,
        "results": results,
        "ratios_peregrine_over_peer": rat,
        "baseline_comparison": base_rows,
        "notes": {
            "latency": "Measured (wrk's coordinated-omission correction undone, see scripts/wrk/report.lua); "
                       "for pipelined cases one sample per batch of N requests.",
            "non_2xx_3xx": "wrk's counter: responses with status >= 400.",
            "cpu": "utime+stime of the server's process tree from /proc, over the measured run only.",
            "client_bound": f"wrk used >= {CLIENT_BOUND_PCT:.0f}% of its CPU: the load generator may be the limit.",
            "noisy": f">= {NOISY_PCT:.0f}% of the server's or wrk's CPU was busy with something else "
                     "(other processes, or interrupt time not billed to a process); rerun when quiet.",
        },
    }
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)

    header, rows = table_rows(results, servers, cases, rat)
    text = render_text_table(header, rows)
    legend = "Latency in ms. * = wrk used >= %d%% of its CPU (client-bound). " % CLIENT_BOUND_PCT
    legend += "! = >= %d%% of a pinned CPU went to other load (noisy run)." % NOISY_PCT
    if rat:
        legend = ("P/x = Peregrine / this server (req/s > 1, cpu and mem < 1 favour Peregrine). "
                  + legend)
    runs_n = max((r.get("runs", 1) for r in results), default=1)
    if runs_n > 1:
        legend += f" Figures are medians of {runs_n} runs."
    print(text)
    print()
    print(legend)
    problems = [r for r in results if r["status"] not in ("ok",)]
    for r in problems:
        print(f"  {r['server']} {r['case']}: {r['status']}: {r.get('reason') or ''}")
    partial = [r for r in results if r["status"] == "ok" and r.get("reason")]
    for r in partial:
        print(f"  {r['server']} {r['case']}: {r['reason']}")
    base_title = base_header = base_body = None
    if base_rows:
        base_title = (f"Before/after: peregrine (this tree) / peregrine-base "
                      f"({meta.get('baseline', 'baseline')}"
                      + (f" = {str(meta['baseline_commit'])[:12]}" if meta.get("baseline_commit") else "")
                      + ")" + (f", medians of {runs_n} runs" if runs_n > 1 else ""))
        base_header, base_body = baseline_table(base_rows)
        print()
        print(base_title)
        print(render_text_table(base_header, base_body, left=(0, len(base_header) - 1), group=False))
        print(baseline_summary(base_rows))

    title = args.title or " vs ".join(servers)
    if args.subtitle:
        title += "\n" + args.subtitle
    png = None
    script = write_plot(results, servers, cases, args.plot_case, args.out, "results.png", title)
    if script and shutil.which("gnuplot"):
        log = os.path.join(args.out, "plot", "gnuplot.log")
        with open(log, "w", encoding="utf-8") as f:
            rc = subprocess.run(["gnuplot", script], stdout=f, stderr=subprocess.STDOUT,
                                timeout=120, check=False).returncode
        if rc == 0 and os.path.exists(os.path.join(args.out, "results.png")):
            png = "results.png"
        else:
            print(f"gnuplot failed; see {log}", file=sys.stderr)
    elif script:
        print(f"gnuplot not found; plot script left at {script}", file=sys.stderr)

    md = []
    md.append(f"# {' vs '.join(servers)}\n")
    if args.subtitle:
        md.append(args.subtitle + "\n")
    md.append(f"Generated {doc['generated']}.")
    if meta:
        md.append("")
        md.append("Run settings: " + ", ".join(f"{k}={v}" for k, v in meta.items()) + ".")
    if png:
        md.append(f"\n![results]({png})\n")
    md.append("## Results\n")
    md.append(render_md_table(header, rows))
    md.append("")
    md.append(legend)
    md.append("")
    if base_rows:
        md.append("## " + base_title + "\n")
        md.append(render_md_table(base_header, base_body))
        md.append("")
        md.append(baseline_summary(base_rows))
        md.append("")
    details = [r for r in results if r["status"] == "ok" and r.get("kind") != "memory"]
    if details:
        md.append("## Details\n")
        md.append("| case | server | requests | seconds | p75 | p99.99 | max | latency samples | "
                  "server CPU % | wrk CPU % | other load srv/wrk CPU % | socket errors (c/r/w/t) | "
                  "wrk's own p99 |")
        md.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
        for r in details:
            se = r["socket_errors"]
            md.append("| {} | {} | {} | {:.2f} | {} | {} | {} | {} | {} | {} | {} | {}/{}/{}/{} | {} |".format(
                r["case"], r["server"], fmt_int(r["requests"]), r["duration_s"] or 0,
                fmt_ms(r["latency_ms"]["p75"]), fmt_ms(r["latency_ms"]["p99.99"]),
                fmt_ms(r["latency_ms"]["max"]), fmt_int(r.get("latency_samples")),
                "-" if r["server_cpu_pct"] is None else f"{r['server_cpu_pct']:.0f}",
                "-" if r["client_cpu_pct"] is None else f"{r['client_cpu_pct']:.0f}",
                "{}/{}".format(*("-" if v is None else f"{v:.0f}" for v in
                                 (r["other_load_server_cpu_pct"], r["other_load_client_cpu_pct"]))),
                se["connect"], se["read"], se["write"], se["timeout"],
                fmt_ms(r["wrk_corrected_latency_ms"].get("99"))))
        md.append("")
    mem = [r for r in results if r.get("kind") == "memory"]
    if mem:
        md.append("## Memory per idle keep-alive connection\n")
        md.append("| server | status | established | closed by server | server-side ESTAB | metric | "
                  "before | during | bytes/conn |")
        md.append("|---|---|---:|---:|---:|---|---:|---:|---:|")
        for r in mem:
            md.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                r["server"], r["status"], fmt_int(num(r.get("connections_established"))),
                fmt_int(num(r.get("connections_closed_by_server"))),
                fmt_int(num(r.get("server_side_established"))), r.get("memory_metric") or "-",
                fmt_bytes(r.get("memory_before_bytes")), fmt_bytes(r.get("memory_during_bytes")),
                fmt_bytes(r.get("bytes_per_connection"))))
        md.append("")
        md.append("Userspace memory only (sum of Pss over the server's process tree); kernel socket "
                  "buffers are not included.")
        md.append("")
    if problems:
        md.append("## Not measured\n")
        for r in problems:
            md.append(f"- {r['server']} / {r['case']}: **{r['status']}** - {r.get('reason') or ''}")
        md.append("")
    md.append("## Notes\n")
    for k, v in doc["notes"].items():
        md.append(f"- {k}: {v}")
    md.append("- Pipelined latency: wrk records one sample per batch (write of N requests -> last "
              "response), so it is batch latency, and wrk's own pipelined percentiles are wrong.")
    if env_text:
        md.append("\n## Environment\n")
        md.append("```")
        md.append(env_text.rstrip())
        md.append("```")
    with open(os.path.join(args.out, "results.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(md) + "\n")
    print()
    if png:
        print(f"picture: {os.path.join(args.out, png)}")
    print(f"results: {os.path.join(args.out, 'results.md')}, {os.path.join(args.out, 'results.json')}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("record", help="append a run record")
    p.add_argument("runs")
    p.add_argument("fields", nargs="+")
    p.set_defaults(func=cmd_record)
    p = sub.add_parser("wrk", help="parse one wrk output file")
    p.add_argument("file")
    p.set_defaults(func=cmd_wrk)
    p = sub.add_parser("h2load", help="turn h2load output into a wrk-style summary")
    p.add_argument("file")
    p.add_argument("log")
    p.add_argument("connections")
    p.add_argument("streams")
    p.set_defaults(func=cmd_h2load)
    p = sub.add_parser("report", help="build results.json/.md, plot data, table")
    p.add_argument("--runs", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--env", help="text file describing the environment")
    p.add_argument("--meta", action="append", default=[], help="key=value for results.json")
    p.add_argument("--servers", help="server order")
    p.add_argument("--cases", help="case order")
    p.add_argument("--plot-case", default="plaintext")
    p.add_argument("--title", help="picture title (default: the servers)")
    p.add_argument("--subtitle", help="second title line, also used in results.md")
    p.set_defaults(func=cmd_report)
    args = ap.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
