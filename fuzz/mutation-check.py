#!/usr/bin/env python3
"""Mutation check of the fuzz targets: plants one known bug at a time in the
session cores and the lender core, and checks that (1) the committed corpus,
replayed by `cargo test -p pando-fuzz`, and (2) the fuzz target started from an
empty corpus each catch it. Restores every file afterwards. Needs cargo-fuzz.

    python3 fuzz/mutation-check.py [SECONDS]   # fuzzing time per mutant, default 240
"""
import os, subprocess, sys, time
W = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECS = int(sys.argv[1]) if len(sys.argv) > 1 else 240
M=[
 ('M1 master accepts an answer for a value it did not lend','distributed-map/src/session/master.rs',
  "            Some(_) => self.events.push_back(MasterEvent::Result { id, payload }),\n            None => self.fail(now, SessionError::UnknownValue(id)),",
  "            Some(_) => self.events.push_back(MasterEvent::Result { id, payload }),\n            None => self.events.push_back(MasterEvent::Result { id, payload }),",
  'master_session'),
 ('M2 master sends a value before the Welcome','distributed-map/src/session/master.rs',
  "    pub fn send_value(&mut self, now: Instant, id: u64, payload: Vec<u8>) {\n        if !self.is_running() {\n            return;\n        }",
  "    pub fn send_value(&mut self, now: Instant, id: u64, payload: Vec<u8>) {\n        if self.is_closed() {\n            return;\n        }",
  'master_session'),
 ('M3 lender loses a failed value when there is no retry cap','lend-stream/src/machine.rs',
  "        let Some((max, policy)) = self.retries else {\n            *failures = failures.saturating_add(1);\n            return true;",
  "        let Some((max, policy)) = self.retries else {\n            *failures = failures.saturating_add(1);\n            return *failures < 2;",
  'lender_core'),
 ('M4 worker runs one more value than jobs','distributed-map/src/session/worker.rs',
  "        while self.running.len() < self.jobs {",
  "        while self.running.len() <= self.jobs {",
  'worker_session'),
]
missed = 0
for name, path, old, new, target in M:
    p = os.path.join(W, path)
    original = open(p).read()
    assert original.count(old) == 1, f"{name}: the code to mutate changed; update this script"
    try:
        open(p, "w").write(original.replace(old, new))
        t = time.time()
        r = subprocess.run("nice cargo test -q -p pando-fuzz --test corpus 2>&1",
                           shell=True, cwd=W, capture_output=True, text=True)
        if "error[E" in r.stdout:
            sys.exit(f"{name}: the mutant does not compile:\n{r.stdout[-2000:]}")
        by_corpus = "test result: FAILED" in r.stdout
        line = f"{name}: corpus replay {'CAUGHT' if by_corpus else 'missed'} ({time.time() - t:.0f} s)"
        empty = f"/tmp/pando-mutant-corpus-{target}"
        subprocess.run(["rm", "-rf", empty]); os.makedirs(empty)
        b = subprocess.run(f"nice cargo fuzz build --features libfuzzer --sanitizer none -O {target} 2>&1",
                           shell=True, cwd=W, capture_output=True, text=True)
        if b.returncode != 0:
            sys.exit(f"{name}: cannot build the fuzz target {target}:\n{b.stdout[-2000:]}")
        t = time.time()
        f = subprocess.run(f"nice cargo fuzz run --features libfuzzer --sanitizer none -O {target} {empty} "
                           f"-- -max_total_time={SECS} -artifact_prefix=/tmp/pando-mutant- 2>&1",
                           shell=True, cwd=W, capture_output=True, text=True)
        panic = [l for l in f.stdout.splitlines() if "panicked at" in l]
        by_fuzzing = bool(panic)
        # libFuzzer's last status line before the crash: "#N ..." executions.
        runs = [l.split()[0] for l in f.stdout.splitlines() if l.startswith("#")]
        line += (f"; fuzzing from an empty corpus {'CAUGHT' if by_fuzzing else 'missed'} "
                 f"after {time.time() - t:.0f} s ({runs[-1] if runs else '#?'} executions)"
                 f"{': ' + panic[0].strip() if panic else ''}")
        print(line, flush=True)
        missed += (not by_corpus) + (not by_fuzzing)
    finally:
        open(p, "w").write(original)
print(f"{len(M)} mutants, {missed} misses")
sys.exit(1 if missed else 0)
