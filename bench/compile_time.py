#!/usr/bin/python3
"""compile_time.py - how long `onnxtune compile` takes, two onnxtune builds side by side (issue 9).

For resnet18 and mobilenet_v2 at 224x224 (exported as bench/finetune.py does) and three programs, the
training programs of finetune.py's scenarios A (frozen + head) and B (last stage + head) and --infer
(batch 16), it runs `onnxtune compile` of BASE and NEW interleaved (the order alternates by round) and
prints the medians over rounds: wall and CPU time (user + system, the C compiler included: /usr/bin/time
counts waited-for children) and the C compiler's CPU time ($CC wrapped in /usr/bin/time), with the
1-minute load. The programs are deleted after each compile.

  /usr/bin/python3 bench/compile_time.py --base /tmp/base/onnxtune --new build/onnxtune [--rounds 3] [--work DIR]

A copy of a build's onnxtune and libonnxtune_*.a in one folder is a whole second build (the runtime is
found next to the executable, the headers in the sources).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import finetune  # noqa: E402  (export_onnx, the scenarios' options)

MODELS = ["resnet18", "mobilenet_v2"]
PROGRAMS = ["A", "B", "infer"]


def options(model, program):
    if program == "infer":
        return ["--infer", "--batch", "16"]
    return (["--head", f"linear:{finetune.CLASSES}", "--batch", str(finetune.BATCH), "--optimizer", "sgd",
             "--momentum", str(finetune.MOMENTUM), "--lr", str(finetune.LR), "--no-shuffle"]
            + finetune.onnxtune_train_opts(model, program))


def load():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def compile_once(onnxtune, onnx, opts, prog, wrap):
    log = prog + ".cc-time"
    if os.path.exists(log):
        os.remove(log)
    env = dict(os.environ, CC=wrap, CC_TIME_LOG=log, CC_REAL=os.environ.get("CC", "cc"))
    l0 = load()
    r = subprocess.run(["/usr/bin/time", "-f", "%e %U %S", onnxtune, "compile", onnx] + opts + ["-o", prog],
                       env=env, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"{onnxtune} compile {onnx} failed:\n{r.stderr}")
    wall, user, sys_ = map(float, r.stderr.strip().splitlines()[-1].split())
    with open(log) as f:
        cc = [list(map(float, line.split())) for line in f if line.strip()]
    os.remove(log)
    if os.path.exists(prog):
        os.remove(prog)
    return {"wall": wall, "cpu": user + sys_, "cc_cpu": sum(c[1] + c[2] for c in cc), "load": l0}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True, help="the onnxtune to compare against")
    ap.add_argument("--new", required=True, help="the onnxtune measured")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work", default="/tmp/onnxtune-compile-time", help="models and programs (kept: the models)")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    wrap = os.path.join(a.work, "cc-time.sh")
    with open(wrap, "w") as f:   # $CC may be several words: left unquoted
        f.write('#!/bin/sh\nexec /usr/bin/time -a -o "$CC_TIME_LOG" -f "%e %U %S" $CC_REAL "$@"\n')
    os.chmod(wrap, 0o755)
    res = {}
    for r in range(a.rounds):
        for model in MODELS:
            onnx = os.path.join(a.work, f"{model}-224.onnx")
            if not os.path.exists(onnx):
                finetune.export_onnx(model, 224, onnx)
            for program in PROGRAMS:
                for which in (["base", "new"] if r % 2 == 0 else ["new", "base"]):
                    row = compile_once(getattr(a, which), onnx, options(model, program),
                                       os.path.join(a.work, f"prog-{which}"), wrap)
                    res.setdefault(f"{model} {program} {which}", []).append(row)
                    print(model, program, which, row, flush=True)
    with open(os.path.join(a.work, "compile_time.json"), "w") as f:
        json.dump(res, f, indent=1)
    print("\n| model | program | wall s base | wall s new | CPU s base | CPU s new | CPU new/base "
          "| cc CPU s base | cc CPU s new | load |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for model in MODELS:
        for program in PROGRAMS:
            b, n = res[f"{model} {program} base"], res[f"{model} {program} new"]
            med = lambda rows, k: statistics.median(x[k] for x in rows)  # noqa: E731
            loads = [x["load"] for x in b + n]
            print(f"| {model} | {program} | {med(b, 'wall'):.2f} | {med(n, 'wall'):.2f} | {med(b, 'cpu'):.2f} | "
                  f"{med(n, 'cpu'):.2f} | {med(n, 'cpu') / med(b, 'cpu'):.2f} | {med(b, 'cc_cpu'):.2f} | "
                  f"{med(n, 'cc_cpu'):.2f} | {min(loads):.1f}-{max(loads):.1f} |")


if __name__ == "__main__":
    main()
