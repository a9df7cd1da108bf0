#!/usr/bin/env python3
"""Broken variants of deploy/prometheus/tenure.rules.yml, each of which its tests must reject.

A rule test that passes whatever the rule says proves nothing. This script first runs
`promtool test rules` on the shipped rules (they must pass), then on each mutant below: one
rule broken the way a real edit could break it, above all back to the naive rules that
docs/operations.md used to recommend. Every mutant must make the tests fail ("killed").

Usage (from the repository root; scripts/deploy-check.sh runs it):

    scripts/rules-mutants.py [--promtool PATH]

Each mutant's old text must occur exactly once in the rules, so an edit of the rules that moves
it fails this script loudly instead of silently testing nothing. Prints one line per mutant and
exits 1 if any mutant survived or did not apply.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RULES = os.path.join(ROOT, "deploy/prometheus/tenure.rules.yml")
TESTS = os.path.join(ROOT, "deploy/prometheus/tenure.rules.test.yml")

STALE_LEADER = """          (tenure_fencing_token > 0)
            < on (job) group_left ()
          max by (job) (tenure_fencing_token)
        for: 1m
"""

# (name, what it stands for, old text, new text)
MUTANTS = [
    (
        "overlap_naive",
        "the old documented page: sum(tenure_acting) > 1, no for:",
        STALE_LEADER,
        "          sum by (job) (tenure_acting) > 1\n",
    ),
    (
        "overlap_without_for",
        "the fencing-token comparison without for: pages on every step-down",
        STALE_LEADER,
        STALE_LEADER.replace("        for: 1m\n", ""),
    ),
    (
        "overlap_by_count",
        "a count of acting nodes with for: no longer names the deposed node",
        STALE_LEADER,
        "          count by (job) (tenure_fencing_token > 0) > 1\n        for: 1m\n",
    ),
    (
        "two_leaders_counts_one",
        "every acting node counted as a second leader",
        '("fencing_token", tenure_fencing_token > 0) > 1',
        '("fencing_token", tenure_fencing_token > 0) > 0',
    ),
    (
        "none_acting_without_for",
        "the old documented page without its delay: fires on every crash failover",
        "          max by (job) (tenure_acting or 0 * up{job=\"tenure\"}) == 0\n        for: 1m\n",
        "          max by (job) (tenure_acting or 0 * up{job=\"tenure\"}) == 0\n",
    ),
    (
        "none_acting_ignores_down_nodes",
        "sum(tenure_acting) == 0 is empty, not 0, when every node is down",
        "max by (job) (tenure_acting or 0 * up{job=\"tenure\"}) == 0",
        "max by (job) (tenure_acting) == 0",
    ),
    (
        "node_down_without_for",
        "every restart pages",
        "          up{job=\"tenure\"} == 0\n        for: 2m\n",
        "          up{job=\"tenure\"} == 0\n",
    ),
    (
        "member_unreachable_per_node",
        "every node's own view, like the old tenure_peer_last_heard_seconds > 2 * lease",
        "          tenure_members_reachable < tenure_members\n"
        "            and on (job, instance) tenure_acting == 1\n",
        "          tenure_members_reachable < tenure_members\n",
    ),
    (
        "member_unreachable_without_for",
        "every restart of a follower fires",
        "            and on (job, instance) tenure_acting == 1\n        for: 2m\n",
        "            and on (job, instance) tenure_acting == 1\n",
    ),
    (
        "without_leader_in_quarantine",
        "a node in boot quarantine counts as cut off",
        "            and on (job, instance) tenure_quarantined == 0\n",
        "",
    ),
    (
        "without_leader_when_nobody_leads",
        "every node fires when the cluster has no leader at all",
        "            and on (job) max by (job) (tenure_acting) == 1\n",
        "",
    ),
    (
        "flapping_threshold_high",
        "four elections in 15 minutes pass unnoticed",
        "sum by (job) (increase(tenure_elections_total[15m])) > 3",
        "sum by (job) (increase(tenure_elections_total[15m])) > 4",
    ),
    (
        "flapping_threshold_low",
        "a rolling upgrade counts as flapping",
        "sum by (job) (increase(tenure_elections_total[15m])) > 3",
        "sum by (job) (increase(tenure_elections_total[15m])) > 2",
    ),
    (
        "datagrams_every_reason",
        "replayed datagrams, normal after restarts, fire",
        'tenure_datagrams_dropped_total{reason=~"unauthenticated|unknown_peer|misaddressed"}[5m]',
        "tenure_datagrams_dropped_total[5m]",
    ),
    (
        "term_jump_every_reason",
        "stale terms, normal after every election, fire",
        'tenure_messages_dropped_total{reason="term_too_far"}[5m]',
        "tenure_messages_dropped_total[5m]",
    ),
    (
        "duplicate_id_moves_only",
        "the peer that sees two processes stays quiet",
        "\n            or increase(tenure_duplicate_ids_total[15m]) > 0",
        "",
    ),
    (
        "daemon_restarts_wrong_counter",
        "counts first starts instead of restarts",
        "increase(tenure_child_restarts_total[1h]) > 0",
        "increase(tenure_child_starts_total[1h]) > 1",
    ),
]


def run_tests(promtool, rules_text):
    """Runs the tests against `rules_text`; returns True if they pass."""
    with tempfile.TemporaryDirectory(prefix="tenure-rules-") as directory:
        with open(os.path.join(directory, "tenure.rules.yml"), "w") as rules:
            rules.write(rules_text)
        shutil.copy(TESTS, os.path.join(directory, "tenure.rules.test.yml"))
        result = subprocess.run(
            [promtool, "test", "rules", "tenure.rules.test.yml"],
            cwd=directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
        return result.returncode == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--promtool", default="promtool")
    arguments = parser.parse_args()
    with open(RULES) as rules:
        original = rules.read()

    if not run_tests(arguments.promtool, original):
        print("rules-mutants: the shipped rules fail their own tests", file=sys.stderr)
        return 1

    bad = 0
    for name, meaning, old, new in MUTANTS:
        count = original.count(old)
        if count != 1:
            print(f"NOT APPLIED  {name}: its text occurs {count} times in the rules")
            bad += 1
            continue
        if run_tests(arguments.promtool, original.replace(old, new)):
            print(f"SURVIVED     {name}: {meaning}")
            bad += 1
        else:
            print(f"killed       {name}: {meaning}")
    print(f"rules-mutants: {len(MUTANTS) - bad} of {len(MUTANTS)} mutants killed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
