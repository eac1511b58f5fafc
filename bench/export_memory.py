"""Worker memory over 10,000 exported items (issue 6): RSS stays flat, under 250 MB.

    ./dev run python -m bench.export_memory [--items 10000] [--limit 2000] [--latency-ms 0]

A fresh embedded PostgreSQL is migrated to head; the stand-in Dinero runs in a process of its
own (so its memory, which holds every uploaded file, is not counted). One company is
connected, `--items` card expenses with a JPEG receipt each are stored as the intake stores
them, and the real worker (`exports` queue) exports them all in this process while its
resident set size (VmRSS from /proc/self/status) is sampled every `--sample-seconds`.

To finish in minutes, not the 200 minutes 20,000 requests take at Dinero's 100/min, the
stand-in's rate limit is off, its latency is `--latency-ms` (0 by default) and the pacer's
limit is `--limit` (2,000/min by default): the pacer still reserves every request in
PostgreSQL. A higher limit makes the run slower, not faster: each reservation reads up to
`limit` of the organization's recent reservations (those of the last two minutes), so at
10,000/min a reservation costs ~70 ms of CPU once the table is full (see bench/README.md).

Printed: RSS after start-up, at the start of the export (items stored), its peak and its end,
RSS at every tenth of the items, and the slope (least squares over the samples after the first
tenth of the items, MiB per 1,000 items). Targets: peak below `--max-rss-mib` (250) and flat:
less than 10 MiB growth per 10,000 items after the first tenth. Exit status 1 when missed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time

from bench import export_support as support
from bench.common import temp_database

FLAT_MIB_PER_10K = 10.0


def _slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of RSS (MiB) over items settled, per 1,000 items."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    if var == 0:
        return 0.0
    cov = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return cov / var * 1000


async def run(args: argparse.Namespace) -> int:
    with temp_database("bench-export-memory-") as db, support.sandbox_process(1) as sb:
        async with support.service(db.url, sb.url, args.limit) as app:
            org = support.FIRST_ORG
            started_rss = support.rss_mib()
            await support.connect_companies(app, [org])
            receipt = support.receipt_jpeg(args.receipt_kib)
            store_started = time.perf_counter()
            await support.store_items(app, org, args.items, receipt)
            stored_in = time.perf_counter() - store_started
            await support.reset_pacing(app)
            await support.configure_sandbox(
                sb.url, rate_limit_per_minute=0, latency_ms=args.latency_ms
            )
            before = await support.sandbox_stats(sb.url)
            gc.collect()
            start_rss = support.rss_mib()
            progress_marks = {args.items * k // 10 for k in range(1, 11)}
            marks: list[tuple[int, float, float]] = []

            def on_sample(seconds: float, settled: int, rss: float) -> None:
                while progress_marks and min(progress_marks) <= settled:
                    mark = min(progress_marks)
                    progress_marks.discard(mark)
                    marks.append((mark, seconds, rss))
                    print(
                        f"  {mark:>6} items settled  {seconds:7.1f} s  RSS {rss:6.1f} MiB",
                        flush=True,
                    )

            print(
                f"{args.items} card expenses with a {len(receipt) // 1024} KiB JPEG receipt "
                f"stored in {stored_in:.1f} s; exporting (latency {args.latency_ms} ms, "
                f"stand-in limit off, pacer limit {args.limit}/min, "
                f"worker concurrency {args.concurrency})",
                flush=True,
            )
            result = await support.run_worker_until_settled(
                app,
                [support.company_of(org)],
                concurrency=args.concurrency,
                total_items=args.items,
                time_limit=args.timeout,
                sample_every=args.sample_seconds,
                on_sample=on_sample,
            )
            outcomes = await support.item_outcomes(app, [support.company_of(org)])
            stats = await support.sandbox_stats(sb.url)
    samples = result.samples
    peak = max([start_rss, *(rss for _, _, rss in samples)])
    end = samples[-1][2] if samples else start_rss
    warm = [(settled, rss) for _, settled, rss in samples if settled >= args.items // 10]
    slope = _slope(warm)
    requests = support.since(stats.org(org), before.org(org))
    print()
    print(f"items: {outcomes}" + ("  (TIMED OUT)" if result.timed_out else ""))
    print(
        f"wall time: {result.wall:.1f} s ({args.items / result.wall:.1f} items/s, "
        f"{requests.sent} Dinero requests: {support.breakdown(requests)})"
    )
    print(f"RSS after start-up:         {started_rss:7.1f} MiB")
    print(f"RSS at the export's start:  {start_rss:7.1f} MiB")
    print(f"RSS peak:                   {peak:7.1f} MiB   (target < {args.max_rss_mib} MiB)")
    print(f"RSS at the end:             {end:7.1f} MiB")
    print(
        f"slope after the first tenth: {slope:+.2f} MiB per 1,000 items "
        f"({slope * 10:+.1f} MiB per 10,000; flat: < {FLAT_MIB_PER_10K:.0f})"
    )
    ok = (
        not result.timed_out
        and peak < args.max_rss_mib
        and slope * 10 < FLAT_MIB_PER_10K
        and outcomes.get("failed", 0) == 0
    )
    print("target met" if ok else "TARGET MISSED")
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--limit", type=int, default=2_000, help="pacer requests/minute")
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--receipt-kib", type=int, default=30)
    parser.add_argument("--sample-seconds", type=float, default=0.5)
    parser.add_argument("--max-rss-mib", type=float, default=250.0)
    parser.add_argument("--timeout", type=float, default=3600.0)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
