"""What bench/webhooks.py prints of its wrk runs: throughput and latency against the bare endpoint, CPU, goals."""
import os

from bench.webhook_database import calls_fully_sent

GOAL_VOICE_RATIO, GOAL_VOICE_P99_MS = 0.5, 30
GOAL_MIXED_RATIO = 0.6
GOAL_RSS_MB = 150
GOAL_PROPAGATION_S = 1.0


def ms(microseconds):
    return microseconds / 1000


def sustained_rps(figures):
    """Requests per second counting the time the database took to catch up: answers not yet written are owed."""
    return figures["requests"] / (figures["duration_us"] / 1e6 + (figures["caught_up"] or 0))


def cpu_row(name, cpu, count):
    capacity = cpu["at"] * (os.cpu_count() or 1)
    others = max(cpu["machine"] - cpu["web"] - cpu["db"] - cpu["wrk"], 0)
    return (f"{name:<22}{cpu['web'] * 1000 / count:>11.2f}{cpu['db'] * 1000 / count:>11.2f}"
            f"{cpu['wrk'] * 1000 / count:>12.2f}{cpu['machine'] / capacity:>14.0%}{others / capacity:>15.0%}")


def errors_of(figures):
    return sum(figures[key] for key in ("connect_errors", "read_errors", "write_errors", "timeouts"))


def report(bare, runs, memory, log_path):
    """`runs`: {"voice-only" | "mixed": wrk's figures with caught_up, before, after and cpu_written}."""
    print(f"{'':<12}{'requests/s':>12}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}"
          f"{'requests':>10}{'4xx/5xx':>9}{'errors':>8}")
    for name, figures in (("bare", bare), *runs.items()):
        print(f"{name:<12}{figures['rps']:>12,.0f}{ms(figures['p50_us']):>9.1f}{ms(figures['p90_us']):>9.1f}"
              f"{ms(figures['p99_us']):>9.1f}{ms(figures['max_us']):>9.1f}{figures['requests']:>10,}"
              f"{figures['bad_status']:>9}{errors_of(figures):>8}")
    print(f"\n{'CPU per request':<22}{'web ms':>11}{'db ms':>11}{'wrk ms':>12}{'machine busy':>14}"
          f"{'of it, others':>15}")
    print(cpu_row("bare", bare["cpu"], max(bare["requests"], 1)))
    for name, figures in runs.items():
        print(cpu_row(f"{name}, answering", figures["cpu"], max(figures["requests"], 1)))
        print(cpu_row(f"{name}, all written", figures["cpu_written"], max(figures["requests"], 1)))

    print()
    ratios = {}
    for name, figures in runs.items():
        caught_up = figures["caught_up"]
        ratios[name] = sustained_rps(figures) / bare["rps"] if bare["rps"] else 0
        written = (f"all in the database {caught_up:.1f} s after the run" if caught_up is not None
                   else "NOT all in the database 10 s after the last change")
        print(f"{name + ':':<12}{ratios[name]:.2f} x bare ({sustained_rps(figures):,.0f} requests/s counting "
              f"the writes, {written}), p50 {ms(figures['p50_us']):.1f} ms, p99 {ms(figures['p99_us']):.1f} ms")
        print(f"{'':<12}{records_line(figures)}")
    max_rss = max(rss for rss, _ in memory.values())
    max_peak = max(peak for _, peak in memory.values())
    print(f"memory    : largest web process {max_rss:.0f} MB resident (peak {max_peak:.0f} MB); "
          + ", ".join(f"worker {pid} {rss:.0f} MB" for pid, (rss, _) in memory.items()))
    problems = [line for line in log_path.read_text().splitlines() if "Traceback" in line or "ERROR" in line]
    if problems:
        print(f"server    : {len(problems)} errors logged, the first: {problems[0][:200]}")
    return ratios, max_rss


def records_line(figures):
    new_records, new_routed, new_completed = (a - b for a, b in zip(figures["after"], figures["before"], strict=True))
    line = (f"{figures['voice_sent']:,} voice webhooks sent, {new_records:,} call records written, "
            f"{new_routed:,} routed by the voice webhook")
    if figures["whole_calls"]:
        line += (f"; {calls_fully_sent(figures['sent_per_thread']):,} calls sent to the end, "
                 f"{new_completed:,} recorded completed and answered")
    if figures["wrapped"]:
        line += f"; WARNING: the request list came round {figures['wrapped']} times, CallSids repeated"
    return line


def all_recorded(figures):
    new_records, new_routed, new_completed = (a - b for a, b in zip(figures["after"], figures["before"], strict=True))
    completed = calls_fully_sent(figures["sent_per_thread"]) if figures["whole_calls"] else 0
    return (figures["bad_status"] == 0 and not figures["wrapped"] and new_routed == figures["voice_sent"]
            and new_records == figures["voice_sent"] and new_completed >= completed)


def report_goals(runs, ratios, max_rss, propagation):
    """The issue's goals, each met or MISSED; `propagation`: the slowest change to reach every process (s)."""
    goals = []
    if "voice-only" in runs:
        voice = runs["voice-only"]
        goals += [(f"voice-only >= {GOAL_VOICE_RATIO} x bare", ratios["voice-only"] >= GOAL_VOICE_RATIO,
                   f"{ratios['voice-only']:.2f}"),
                  (f"voice-only p99 < {GOAL_VOICE_P99_MS} ms", ms(voice["p99_us"]) < GOAL_VOICE_P99_MS,
                   f"{ms(voice['p99_us']):.1f} ms")]
    if "mixed" in runs:
        goals.append((f"mixed >= {GOAL_MIXED_RATIO} x bare", ratios["mixed"] >= GOAL_MIXED_RATIO,
                      f"{ratios['mixed']:.2f}"))
    if propagation is not None:
        goals.append((f"a change in every process < {GOAL_PROPAGATION_S:.0f} s", propagation < GOAL_PROPAGATION_S,
                       f"{propagation:.2f} s"))
    goals.append((f"web process < {GOAL_RSS_MB} MB", max_rss < GOAL_RSS_MB, f"{max_rss:.0f} MB"))
    for name, figures in runs.items():
        new_routed = figures["after"][1] - figures["before"][1]
        goals.append((f"{name}: no 4xx/5xx, every call recorded", all_recorded(figures),
                      f"{figures['bad_status']} 4xx/5xx, {new_routed:,}/{figures['voice_sent']:,} calls"))
    print("\ngoals:")
    for name, met, value in goals:
        print(f"  {name:<40}{value:>30}  {'met' if met else 'MISSED'}")
