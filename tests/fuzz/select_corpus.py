#!/usr/bin/env python3
"""Picks a small committed corpus for one target: at most N inputs covering as many
coverage edges as the whole working corpus.

`cargo fuzz cmin` keeps every input that adds a feature (edge *counters* included), which
is hundreds of files per target here; the committed corpus is meant to be a few dozen.
This runs libFuzzer's merge over the repo corpus plus the working corpus once, reads the
edges each input covers from the merge control file (COV lines), and picks greedily
(largest gain first, smaller input on ties) until N inputs or nothing new. Files named
`crash-*` in the repo corpus (regression inputs of fixed bugs) are always kept.

    python3 tests/fuzz/select_corpus.py TARGET [--max N] [--max-len BYTES]
(run after `cargo xtask fuzz`, which leaves the fuzzer binary and working corpus in
tests/fuzz/target).
"""
import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("--max", type=int, default=40)
    ap.add_argument("--max-len", type=int, default=0)
    a = ap.parse_args()
    binary = os.path.join(HERE, "target/x86_64-unknown-linux-gnu/release", a.target)
    repo = os.path.join(HERE, "corpus", a.target)
    work = os.path.join(HERE, "target/corpus", a.target)
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, SAKER_FUZZ_STORE_DIR=os.path.join(tmp, "store"))
        os.makedirs(env["SAKER_FUZZ_STORE_DIR"])
        opts = ["-use_counters=0"] + ([f"-max_len={a.max_len}"] if a.max_len else [])
        # Stage 1: libFuzzer's greedy set cover over edges (`cargo fuzz cmin` keeps every
        # input that adds an edge *counter*, hundreds here).
        cover = os.path.join(tmp, "cover")
        os.mkdir(cover)
        inputs = [repo] + ([work] if os.path.isdir(work) else [])
        run([binary, "-set_cover_merge=1", *opts, cover, *inputs], env)
        for f in os.listdir(repo):
            if f.startswith("crash-"):
                shutil.copy(os.path.join(repo, f), os.path.join(cover, f))
        # Stage 2: each remaining input's own edges (a control file lists only the edges
        # new to the merging process, so one process per input).
        files, cov = [], {}
        for i, name in enumerate(sorted(os.listdir(cover))):
            one = os.path.join(tmp, "one")
            shutil.rmtree(one, ignore_errors=True)
            os.mkdir(one)
            shutil.copy(os.path.join(cover, name), one)
            out = os.path.join(tmp, "out")
            shutil.rmtree(out, ignore_errors=True)
            os.mkdir(out)
            ctl = os.path.join(tmp, "control")
            # An existing control file makes libFuzzer resume that merge.
            if os.path.exists(ctl):
                os.remove(ctl)
            run([binary, "-merge=1", *opts, f"-merge_control_file={ctl}", out, one], env)
            files.append(os.path.join(cover, name))
            cov[i] = set()
            for line in open(ctl).read().splitlines():
                parts = line.split()
                if parts and parts[0] == "COV":
                    cov[i] |= set(parts[2:])
        n = len(files)
        names = {i: os.path.basename(f) for i, f in enumerate(files)}
        datas = {i: open(f, "rb").read() for i, f in enumerate(files)}
    size = {i: len(d) for i, d in datas.items()}
    total = set().union(*cov.values()) if cov else set()
    keep = [i for i in names if names[i].startswith("crash-")]
    covered = set().union(*(cov[i] for i in keep)) if keep else set()
    chosen = list(keep)
    while len(chosen) < a.max:
        best, gain = None, 0
        for i, c in cov.items():
            if i in chosen:
                continue
            g = len(c - covered)
            if g > gain or (g == gain and g > 0 and size[i] < size[best]):
                best, gain = i, g
        if best is None:
            break
        chosen.append(best)
        covered |= cov[best]
    # Hand-made seeds and crash reproducers keep their names; the rest are named by hash.
    named = {}
    for f in os.listdir(repo):
        with open(os.path.join(repo, f), "rb") as fh:
            named[hashlib.sha1(fh.read()).hexdigest()] = f
    picked = {}
    for i in chosen:
        digest = hashlib.sha1(datas[i]).hexdigest()
        picked[named.get(digest, digest[:16])] = datas[i]
    for f in os.listdir(repo):
        os.remove(os.path.join(repo, f))
    for name, data in picked.items():
        with open(os.path.join(repo, name), "wb") as f:
            f.write(data)
    print(f"{a.target}: {len(picked)} files, {sum(map(len, picked.values()))} bytes, "
          f"{len(covered)} of {len(total)} edges of the {n}-input edge cover")


def run(cmd, env):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


if __name__ == "__main__":
    sys.exit(main())
