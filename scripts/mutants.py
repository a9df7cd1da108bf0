#!/usr/bin/env python3
"""Realistic one-line mutants of tenure-core, and which checker kills each.

A checker that never fails proves nothing, and a checker that only fails on the broken variants
it was built against proves little more. This script applies, one at a time, mutations of the
kind a real change could introduce (an off-by-one time comparison, a drift factor dropped in one
place, a persist moved or dropped, a stale-term message accepted, a margin set to zero, a
handover sent too early) to the core's source, runs a checker against each, and restores the
source. A mutant is *killed* when the checker fails on it.

Usage (from the repository root):

    scripts/mutants.py --list
    scripts/mutants.py --checker core            # cargo test -p tenure-core (rules + harness)
    scripts/mutants.py --checker model           # the default model check, as CI runs it
    scripts/mutants.py --checker sim             # the CI simulation campaign
    scripts/mutants.py --checker 'CMD ...'       # any command: non-zero exit = killed
    scripts/mutants.py --checker model --only promise_shortened_by_drift,persist_vote_after_reply
    scripts/mutants.py --core store --checker store-core    # the store-lease core's mutants (CI)
    scripts/mutants.py --core store --checker store-model   # ... against the store model suite
    scripts/mutants.py --core store --checker store-sim     # ... against the store campaign

Each mutant must apply exactly once, so a refactoring of the core that moves the mutated line
fails this script loudly instead of silently testing nothing. The source is restored after each
mutant, also on Ctrl-C. Prints a progress line per mutant and a Markdown table at the end; exits
1 if any mutant survived (or failed to apply, or did not compile), so it can gate CI.
"""

import argparse
import os
import shlex
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

NODE = "crates/core/src/node.rs"
LEADERSHIP = "crates/core/src/leadership.rs"
CONFIG = "crates/core/src/config.rs"
STORE = "crates/core/src/store_lease/mod.rs"

# (name, class, file, old text, new text). `old` must occur exactly once in `file`. A mutant that
# moves a line gives lists of old and new texts, applied in order.
MUTANTS = [
    (
        "lease_held_at_its_end",
        "off-by-one time comparison",
        LEADERSHIP,
        "        now < self.lease_until",
        "        now <= self.lease_until",
    ),
    (
        "acting_at_its_end",
        "off-by-one time comparison",
        LEADERSHIP,
        "        now < self.acting_until",
        "        now <= self.acting_until",
    ),
    (
        "window_closes_late",
        "off-by-one time comparison",
        NODE,
        "            if now >= self.window_until(leader) {",
        "            if now > self.window_until(leader) {",
    ),
    (
        "promise_expires_early",
        "off-by-one time comparison",
        NODE,
        "        let promised = self.promise_until.is_some_and(|until| now < until);",
        "        let promised = self.promise_until.is_some_and(|until| now + self.config.heartbeat_interval() < until);",
    ),
    (
        "promise_shortened_by_drift",
        "drift factor dropped in one place",
        NODE,
        "        let promise = now + self.config.lease_duration();",
        "        let promise = now + self.config.lease_hold();",
    ),
    (
        "lease_hold_without_slow_clock_factor",
        "drift factor dropped in one place",
        CONFIG,
        "    lease_duration.mul_ratio(PPM - drift, PPM + drift)",
        "    lease_duration.mul_ratio(PPM, PPM + drift)",
    ),
    (
        "lease_hold_without_fast_clock_factor",
        "drift factor dropped in one place",
        CONFIG,
        "    lease_duration.mul_ratio(PPM - drift, PPM + drift)",
        "    lease_duration.mul_ratio(PPM - drift, PPM)",
    ),
    (
        "persist_vote_dropped",
        "persist moved after a send or dropped",
        NODE,
        "                self.voted_for = Some(from);\n                self.persist();",
        "                self.voted_for = Some(from);",
    ),
    (
        "persist_vote_after_reply",
        "persist moved after a send or dropped",
        NODE,
        [
            "                self.voted_for = Some(from);\n                self.persist();",
            "                term: self.term,\n                granted,\n            },\n        );\n        Received::Accepted",
        ],
        [
            "                self.voted_for = Some(from);",
            "                term: self.term,\n                granted,\n            },\n        );\n        self.persist();\n        Received::Accepted",
        ],
    ),
    (
        "persist_self_vote_dropped",
        "persist moved after a send or dropped",
        NODE,
        "        self.voted_for = Some(self.id);\n        self.persist();",
        "        self.voted_for = Some(self.id);",
    ),
    (
        "older_term_grant_counted",
        "stale-term message accepted",
        NODE,
        "        if term != current || !granted {",
        "        if term > current || !granted {",
    ),
    (
        "older_term_ack_counted",
        "stale-term message accepted",
        NODE,
        "        if term < self.term {\n            return Received::Dropped(DropReason::StaleTerm);\n        }\n        let Role::Leader(leader) = &mut self.role else {",
        "        let Role::Leader(leader) = &mut self.role else {",
    ),
    (
        "stale_heartbeat_reply_echoes_seq",
        "stale-term message accepted",
        NODE,
        "                NO_HEARTBEAT\n            };",
        "                seq\n            };",
    ),
    (
        "timeout_now_releases_any_promise",
        "stale-term message accepted",
        NODE,
        "        let released = matches!(self.role, Role::Follower { leader: None, .. })\n            && self.promise_until.is_none();",
        "        let released = matches!(self.role, Role::Follower { leader: None, .. });",
    ),
    (
        "stop_margin_zero",
        "margin set to zero",
        NODE,
        "            lease_until - self.config.stop_margin()\n",
        "            lease_until - Duration::ZERO\n",
    ),
    (
        "leader_makes_no_promise",
        "margin set to zero",
        NODE,
        "        self.promise_until = Some(now + lease_duration);\n        for peer in",
        "        let _ = lease_duration;\n        for peer in",
    ),
    (
        "resign_sent_before_the_child_stopped",
        "handover sent too early",
        NODE,
        "                self.push(Output::Event(Event::ResignRequested { term }));\n                Ok(())",
        "                self.push(Output::Event(Event::ResignRequested { term }));\n                for peer in self.peers().collect::<Vec<_>>() {\n                    self.send(peer, Message::Resign { term });\n                }\n                Ok(())",
    ),
    (
        "promise_released_on_resign_before_stop",
        "handover sent too early",
        NODE,
        "                leader.resigning = Some(Resigning {\n                    since: now,\n                    successor,\n                });",
        "                leader.resigning = Some(Resigning {\n                    since: now,\n                    successor,\n                });\n                self.promise_until = None;",
    ),
    (
        "a_second_vote_in_a_term",
        "single vote",
        NODE,
        "        let granted = self.voted_for.is_none_or(|voted_for| voted_for == from);",
        "        let granted = true;",
    ),
    (
        "majority_off_by_one",
        "quorum",
        CONFIG,
        "        self.members.len() / 2 + 1",
        "        self.members.len() / 2",
    ),
    # The store-lease core (protocol: Store leases). The checkers: `store-model` and `store-sim`
    # for the rules a correct store relies on, `core` for those that only a broken or hostile
    # store exercises (crates/core/tests/store_hazards.rs).
    (
        "store_lapse_at_its_end",
        "off-by-one time comparison",
        STORE,
        "            if now >= self.lapse_at(tenure) {",
        "            if now > self.lapse_at(tenure) {",
    ),
    (
        "store_timeout_at_its_end",
        "off-by-one time comparison",
        STORE,
        "            if now >= outstanding.sent_at + self.config.params().request_timeout {",
        "            if now > outstanding.sent_at + self.config.params().request_timeout {",
    ),
    (
        "store_takeover_after_lease_hold",
        "drift factor in the wrong place",
        STORE,
        "            (Some(_), ExpiryJudge::Contenders) => observed.seen_at + self.config.lease_duration(),",
        "            (Some(_), ExpiryJudge::Contenders) => observed.seen_at + self.config.lease_hold(),",
    ),
    (
        "store_sighting_timed_from_the_request",
        "lease timed from the wrong instant",
        STORE,
        "            _ => now,",
        "            _ => now - self.config.params().request_timeout,",
    ),
    (
        "store_sighting_kept_while_the_holder_renews",
        "lease timed from the wrong instant",
        STORE,
        "            Some(observed) if observed.record.version == record.version => observed.seen_at,",
        "            Some(observed) if observed.record.holder == record.holder => observed.seen_at,",
    ),
    (
        "store_acquisition_timed_from_its_reply",
        "lease timed from the wrong instant",
        STORE,
        "        let lease_until = self.lease_basis(now, outstanding) + self.config.lease_hold();",
        "        let lease_until = now + self.config.lease_hold();",
    ),
    (
        "store_renewal_timed_from_its_reply",
        "lease timed from the wrong instant",
        STORE,
        "        let basis = self.lease_basis(now, outstanding);",
        "        let basis = now;",
    ),
    (
        "store_stop_margin_zero",
        "margin set to zero",
        STORE,
        "                .saturating_sub(self.config.stop_margin().as_nanos()),",
        "                .saturating_sub(0),",
    ),
    (
        "store_resigning_holder_keeps_acting",
        "handover sent too early",
        STORE,
        "            Some(since) => self.window_until(tenure).min(since),",
        "            Some(_) => self.window_until(tenure),",
    ),
    (
        "store_release_sent_before_the_child_stopped",
        "handover sent too early",
        STORE,
        "        self.resign(now);\n        self.check_invariants(now);\n        Ok(())",
        "        self.resign(now);\n        let _ = self.handle_acting_stopped(now);\n        self.check_invariants(now);\n        Ok(())",
    ),
    (
        "store_conflict_keeps_the_tenure",
        "refusal ignored",
        STORE,
        "            if tenure.token == token {\n                // Someone else",
        "            if tenure.token != token {\n                // Someone else",
    ),
    (
        "store_late_reply_skips_the_lapse",
        "lapse skipped",
        STORE,
        "        self.advance_now(now);\n        self.expire(now);\n        let Some(outstanding) = self.outstanding.filter",
        "        self.advance_now(now);\n        let Some(outstanding) = self.outstanding.filter",
    ),
    (
        "store_failed_acquisition_keeps_its_sighting",
        "ambiguous outcome trusted",
        STORE,
        "                self.observed = None;\n                self.next_request_at = now + self.config.params().poll_interval;",
        "                self.next_request_at = now + self.config.params().poll_interval;",
    ),
    (
        "store_acquisition_on_a_pause_acts",
        "campaign hold ignored",
        STORE,
        "                    if self.earliest_acquire_allowed() > now {",
        "                    if false {",
    ),
    (
        "store_smaller_token_accepted",
        "hostile store trusted",
        STORE,
        "                    && record.token > self.highest_token",
        "",
    ),
    (
        "store_renewal_of_another_holder_accepted",
        "hostile store trusted",
        STORE,
        "                record.holder == Some(self.id)\n                    && record.token == token\n                    && new_version(self.observed",
        "                record.token == token\n                    && new_version(self.observed",
    ),
    (
        "store_unchanged_version_accepted",
        "hostile store trusted",
        STORE,
        "                    && new_version(self.observed.map(|observed| observed.record.version))",
        "",
    ),
    (
        "quarantine_only_on_first_boot",
        "boot quarantine",
        NODE,
        "        let quarantined = !(first_boot_alone || config.breaks(Variant::NoBootQuarantine));",
        "        let quarantined = fresh && !(first_boot_alone || config.breaks(Variant::NoBootQuarantine));",
    ),
]

CHECKERS = {
    "core": "cargo test -q -p tenure-core",
    "model": "cargo run -q --release -p tenure-models -- check",
    "sim": "cargo run -q --release -p tenure-sim -- --ci --jobs 2 --fail-fast",
    "store-core": "cargo test -q -p tenure-core --test store_rules --test store_hazards",
    "store-model": "cargo run -q --release -p tenure-models -- check --core store",
    "store-sim": "cargo run -q --release -p tenure-sim -- --ci --core store --jobs 2 --fail-fast",
}


def build_command(command):
    """The command that only builds what a cargo checker runs, so that a mutant that does not
    compile is told apart from one the checker kills; None for any other checker."""
    words = shlex.split(command)
    head, _, _ = " ".join(words).partition(" -- ")
    words = shlex.split(head)
    if words[:2] == ["cargo", "test"]:
        return words + ["--no-run"]
    if words[:2] == ["cargo", "run"]:
        return ["cargo", "build"] + words[2:]
    return None


def apply(mutant):
    name, _, path, olds, news = mutant
    if isinstance(olds, str):
        olds, news = [olds], [news]
    full = os.path.join(ROOT, path)
    with open(full, encoding="utf-8") as handle:
        original = handle.read()
    text = original
    for old, new in zip(olds, news):
        count = text.count(old)
        if count != 1:
            return None, f"{name}: the mutated text occurs {count} times in {path}, expected once"
        text = text.replace(old, new, 1)
    with open(full, "w", encoding="utf-8") as handle:
        handle.write(text)
    return (full, original), None


def restore(saved):
    full, text = saved
    with open(full, "w", encoding="utf-8") as handle:
        handle.write(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checker", default="core",
                        help="core, model, sim, or a shell command (non-zero exit = killed)")
    parser.add_argument("--only", default="", help="comma-separated mutant names")
    parser.add_argument("--core", choices=["quorum", "store", "both"], default="both",
                        help="mutants of the quorum core, of the store-lease core, or both")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--timeout", type=int, default=1800,
                        help="seconds per mutant; a checker still running then counts as survived")
    args = parser.parse_args()

    def of_core(mutant):
        store = mutant[2] == STORE
        return args.core == "both" or (args.core == "store") == store

    if args.list:
        for name, kind, path, _, _ in filter(of_core, MUTANTS):
            print(f"{name:42} {kind:40} {path}")
        return 0
    selected = [m for m in MUTANTS
                if of_core(m) and (not args.only or m[0] in args.only.split(","))]
    unknown = set(filter(None, args.only.split(","))) - {m[0] for m in MUTANTS}
    if unknown:
        print(f"unknown mutants: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    command = CHECKERS.get(args.checker, args.checker)
    print(f"checker: {command}  ({len(selected)} mutants)", flush=True)

    results = []
    saved = None

    def interrupted(signum, _frame):
        if saved:
            restore(saved)
        print("\ninterrupted; the source is restored", file=sys.stderr)
        sys.exit(130)

    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    for number, mutant in enumerate(selected, 1):
        name, kind = mutant[0], mutant[1]
        saved, error = apply(mutant)
        if error:
            results.append((name, kind, "did not apply", 0.0))
            print(f"[{number}/{len(selected)}] {error}", flush=True)
            continue
        started = time.monotonic()
        try:
            build = build_command(command)
            built = build is None or subprocess.run(
                build, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                timeout=args.timeout, check=False).returncode == 0
            if not built:
                # A mutant that does not compile tests nothing: it is not counted as killed.
                verdict = "DID NOT COMPILE"
            else:
                run = subprocess.run(shlex.split(command), cwd=ROOT, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, timeout=args.timeout, check=False)
                verdict = "killed" if run.returncode != 0 else "SURVIVED"
        except subprocess.TimeoutExpired:
            verdict = "SURVIVED (timeout)"
        finally:
            restore(saved)
            saved = None
        elapsed = time.monotonic() - started
        results.append((name, kind, verdict, elapsed))
        print(f"[{number}/{len(selected)}] {name}: {verdict} in {elapsed:.0f} s", flush=True)

    print(f"\n| mutant | class | `{command}` | seconds |\n| --- | --- | --- | --- |")
    for name, kind, verdict, elapsed in results:
        print(f"| `{name}` | {kind} | {verdict} | {elapsed:.0f} |")
    killed = sum(1 for r in results if r[2] == "killed")
    print(f"\n{killed} of {len(results)} mutants killed")
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
