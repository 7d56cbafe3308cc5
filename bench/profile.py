"""profile.py - where a compiled training program's time goes, by kernel family: `perf record` with DWARF
call chains on PROG, then every sample is charged to the runtime kernel the generated step function
called (the frame below train_step_run / train_update_run), split into GEMM / im2col / col2im /
direct loop by the frames above it. Sampling counts CPU time, so a loaded machine changes little but
the wall clock. It measures nothing else (finetune.py times steps).

Run (1 thread, as the programs finetune.py compiles; perf_event_paranoid <= 2 is enough):
  /usr/bin/python3 bench/profile.py PROG --train-x X.npy --train-y Y.npy [--epochs 2] [--freq 300]
  /usr/bin/python3 bench/profile.py --data PERF.data --steps 8      # re-read an earlier recording
Prints a markdown table: family, share of the samples, CPU ms per step (samples x period / steps).
"""
import argparse
import collections
import os
import subprocess
import sys
import tempfile

STEP_FUNCS = ("train_step_run", "train_update_run", "features_run", "rest_step_run", "rest_update_run")
GEMM = ("sgemm_", "cblas_sgemm", "gemm_thread", "inner_thread")

# kernel entry point (the generated code's callee) -> family
FAMILIES = [
    ("conv_forward", "conv fwd"),
    ("conv_backward_input", "conv bwd-data"),
    ("conv_backward_weight", "conv bwd-weight"),
    ("batchnorm_", "BN"),
    ("maxpool_", "pool"), ("avgpool_", "pool"), ("global_avgpool", "pool"), ("global_maxpool", "pool"),
    ("unary_", "elementwise"), ("binary_", "elementwise"), ("clip_", "elementwise"), ("where_", "elementwise"),
    ("sgd_", "optimizer"), ("adam", "optimizer"),
    ("gemm_", "head (Gemm) + loss"), ("cross_entropy", "head (Gemm) + loss"), ("reduce_", "head (Gemm) + loss"),
    ("memset", "memset (zeroing)"), ("memcpy", "memcpy"), ("__mem", "memset (zeroing)"),
]
DATA = ("prefetch_thread", "dataset_", "tr_next_batch", "npy_")


def parse(script):
    """perf script text -> [(period, [frames leaf first])]"""
    samples, cur = [], None
    for line in script.splitlines():
        if not line.strip():
            if cur:
                samples.append(cur)
            cur = None
        elif line.startswith("\t"):
            parts = line.split(None, 1)
            if cur is not None:
                cur[1].append(parts[1].strip() if len(parts) > 1 else "?")
        else:
            fields = line.split()
            cur = (int(fields[1]) if len(fields) > 1 else 1, [])
    if cur:
        samples.append(cur)
    return samples


def family(frames):
    for i, f in enumerate(frames):
        if f in STEP_FUNCS:
            entry = frames[i - 1] if i > 0 else f
            fam = next((name for prefix, name in FAMILIES if entry.startswith(prefix)), "other: " + entry)
            if fam.startswith("conv"):
                inner = frames[:i]
                if any(x.startswith("im2col") for x in inner):
                    return fam + ": im2col"
                if any(x.startswith("col2im") for x in inner):
                    return fam + ": col2im"
                if any(x.startswith(GEMM) for x in inner):
                    return fam + ": GEMM"
                if any("dnnl" in x or "jit" in x for x in inner):   # libdnnl's frames, C++ or JIT code
                    return fam + ": oneDNN"
                if any(x.startswith(("conv_depthwise", "dw_")) for x in inner):
                    return fam + ": depthwise (conv_dw.c)"
                return fam + ": own loops (copies, epilogue)"
            return fam
    if any(f.startswith(DATA) for f in frames):
        return "data loading"
    if frames and frames[0].startswith("sgemm_"):   # OpenBLAS asm without unwind info: the caller is lost
        return "GEMM, caller unknown"
    if "fit" not in frames:
        return "start-up (weights, data, threads)"
    return "other"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("prog", nargs="?")
    ap.add_argument("--train-x")
    ap.add_argument("--train-y")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--freq", type=int, default=300)
    ap.add_argument("--data", help="an existing perf.data (then --steps)")
    ap.add_argument("--steps", type=int, help="steps in the recorded run (default: epochs * samples / batch)")
    a = ap.parse_args()
    steps = a.steps or a.epochs * -(-a.samples // a.batch)
    data = a.data
    if not data:
        if not (a.prog and a.train_x and a.train_y):
            sys.exit("profile.py: PROG --train-x X --train-y Y, or --data PERF.data --steps N")
        data = tempfile.mktemp(suffix=".perf.data")
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        subprocess.run(["perf", "record", "-q", "-F", str(a.freq), "--call-graph", "dwarf,16384", "-o", data,
                        a.prog, "--train-x", a.train_x, "--train-y", a.train_y, "--no-shuffle", "--quiet",
                        "--feature-cache", "off",   # every step computes the frozen part, as PyTorch's does
                        "--threads", "1", "--epochs", str(a.epochs)], env=env, check=True)
    script = subprocess.run(["perf", "script", "-i", data, "-F", "tid,period,ip,sym", "--no-inline"],
                            capture_output=True, text=True, check=True).stdout
    samples = parse(script)
    total = sum(p for p, _ in samples)
    by = collections.Counter()
    for period, frames in samples:
        by[family(frames)] += period
    print(f"{len(samples)} samples, {total * 1e-9:.2f} s CPU (perf's clock), {steps} steps\n")
    print("| family | share | CPU ms per step |\n|---|---|---|")
    for fam, p in sorted(by.items(), key=lambda kv: (kv[0].startswith("start-up"), -kv[1])):
        per_step = "" if fam.startswith("start-up") else f"{p * 1e-6 / steps:.1f}"
        print(f"| {fam} | {100 * p / total:.1f} % | {per_step} |")


if __name__ == "__main__":
    main()
