"""layerprof.py - GFLOP/s per layer kind of a compiled training program against the machine's measured
peak, and where the rest of a step's time goes (issue 9).

Time: the program finetune.py compiles (same model export, head, optimizer, batch, scenario), compiled
with --emit-c; its generated C is rebuilt with the same cc command line after inserting a timer call
before every node's block (each block starts with the comment `/* NAME (OP): ... */`), so every
node's CPU time (CLOCK_THREAD_CPUTIME_ID, the calling thread; hence 1 thread only) is summed over a
whole run of PROG --epochs E --feature-cache off. Between two timer calls there is exactly one node's
code, so a fused node (Conv + BN + Clip in one kernel call) carries its epilogue's time. The thread
CPU clock is a system call here (~1.4 us of CPU on this VM), about one of which is charged to the
nodes per node call: the output gives node calls per step (a batch-1 features program's nodes run 16
times a step), e.g. 2300 for vit A = ~3 ms of a 161 ms step (2 %), 0.01-0.6 % for the CNNs.
FLOPs: `onnxtune dump --json -b 16 MODEL`'s per-node `flops` (multiply-adds, counted here as 2 FLOPs)
for forward nodes (a batch-1 features program's node runs 16 times a step: same total); a ConvGradInput
or ConvGradWeight node does the multiply-adds of its forward Conv; a MatMul/Gemm made by the backward
pass, and the new head, are counted from the shapes in its comment.
Peak, measured in the same invocation at 1 thread (process CPU time, median of --peak-reps):
  FMA peak: a loop of 12 independent AVX2 _mm256_fmadd_ps chains (the core's 2 FMA pipes x 8 floats
            x 2 FLOPs a cycle; what no kernel can exceed),
  sgemm:    OpenBLAS cblas_sgemm 1024^3 (the library our GEMM-shaped convs call; the practical roofline).

Run (after the build):
  /usr/bin/python3 bench/layerprof.py [--models resnet18,mobilenet_v2,vit] [--sizes 224] [--scenarios A,B]
      [--epochs 2] [--work DIR] [--onnxtune build/onnxtune]
Prints per program a table (layer kind, direction, GFLOP and CPU ms per step, GFLOP/s, % of both peaks)
and writes WORK/layerprof.json.
"""
import argparse
import collections
import ctypes
import json
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import finetune as ft  # noqa: E402  (the same exports, options, data)

NODE_RE = re.compile(r"^    /\* (.+?) \((\w+)\): (.*) -> (\[[^\]]*\])")
FUNC_RE = re.compile(r"^void (\w+_run)\(void \*const \*inputs, void \*const \*outputs, void \*workspace\)$")
SHAPE_RE = re.compile(r"\[([0-9,]*)\]")
UPDATE_FUNCS = ("train_update_run", "rest_update_run")
STEP_FUNCS = ("train_step_run", "rest_step_run")

PROLOGUE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double prof_t[%(n)d];
static long prof_n[%(n)d];
static int prof_cur = -1;
static double prof_last;
static double prof_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
/* charge the time since the previous call to the node then running; k = the next node, -1 none */
static void prof_at(int k)
{
    double t = prof_now();
    if (prof_cur >= 0)
        prof_t[prof_cur] += t - prof_last;
    prof_cur = k;
    if (k >= 0)
        prof_n[k]++;
    prof_last = prof_now();
}
__attribute__((destructor)) static void prof_dump(void)
{
    const char *path = getenv("ONNXTUNE_PROF_OUT");
    FILE *f = path ? fopen(path, "w") : NULL;
    if (!f)
        return;
    for (int k = 0; k < %(n)d; k++)
        fprintf(f, "%%d %%ld %%.9f\n", k, prof_n[k], prof_t[k]);
    fclose(f);
}
"""

CC_WRAPPER = """#!/usr/bin/python3
import json, os, sys
with open(os.environ["LAYERPROF_CCLOG"], "a") as f:
    f.write(json.dumps({"cwd": os.getcwd(), "argv": sys.argv[1:]}) + "\\n")
os.execvp("cc", ["cc"] + sys.argv[1:])
"""

FMA_C = r"""
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
static double now(void) { struct timespec ts; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); return ts.tv_sec + 1e-9 * ts.tv_nsec; }
#define F(x) x = _mm256_fmadd_ps(x, b, c)
int main(void)
{
    __m256 b = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(1e-3f);
    __m256 a0 = _mm256_set1_ps(0), a1 = _mm256_set1_ps(1), a2 = _mm256_set1_ps(2), a3 = _mm256_set1_ps(3);
    __m256 a4 = _mm256_set1_ps(4), a5 = _mm256_set1_ps(5), a6 = _mm256_set1_ps(6), a7 = _mm256_set1_ps(7);
    __m256 a8 = _mm256_set1_ps(8), a9 = _mm256_set1_ps(9), a10 = _mm256_set1_ps(10), a11 = _mm256_set1_ps(11);
    long n = 400000000 / 12;
    double t0 = now();
    for (long it = 0; it < n; it++) {   /* 12 independent chains: enough to fill 2 pipes of 4-5 cycles */
        F(a0); F(a1); F(a2); F(a3); F(a4); F(a5); F(a6); F(a7); F(a8); F(a9); F(a10); F(a11);
        __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5));
    }
    double t = now() - t0;
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    float v[8];
    _mm256_storeu_ps(v, s);
    printf("%.3f %g\n", 2.0 * 8 * 12 * n / t * 1e-9, v[0]);
    return 0;
}
"""


def measure_peaks(work, reps):
    """(FMA loop GFLOP/s, sgemm 1024^3 GFLOP/s), 1 thread, medians."""
    src, exe = os.path.join(work, "fma_peak.c"), os.path.join(work, "fma_peak")
    with open(src, "w") as f:
        f.write(FMA_C)
    subprocess.run(["cc", "-O2", "-mavx2", "-mfma", src, "-o", exe], check=True)
    fma = statistics.median(float(subprocess.run([exe], capture_output=True, text=True, check=True).stdout.split()[0])
                            for _ in range(reps))
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--sgemm-peak", str(reps)], capture_output=True,
                         text=True, check=True, env=dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1"))
    return fma, float(out.stdout.split()[0])


def sgemm_peak(reps):
    """Child: cblas_sgemm 1024^3 through the OpenBLAS the programs link (the OpenMP build), CPU time."""
    import numpy as np
    lib = ctypes.CDLL("/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so")
    n = 1024
    a, b, c = (np.random.default_rng(i).standard_normal((n, n), dtype=np.float32) for i in range(3))
    fp = ctypes.POINTER(ctypes.c_float)
    args = [101, 111, 111, n, n, n, ctypes.c_float(1.0), a.ctypes.data_as(fp), n, b.ctypes.data_as(fp), n,
            ctypes.c_float(0.0), c.ctypes.data_as(fp), n]
    lib.cblas_sgemm(*args)
    ts = []
    for _ in range(reps):
        t0 = time.process_time()
        lib.cblas_sgemm(*args)
        ts.append(time.process_time() - t0)
    print(f"{2 * n ** 3 / statistics.median(ts) * 1e-9:.3f}")


def instrument(c_path, out_path):
    """Insert prof_at(k) before every node comment of every *_run function; returns the nodes
    [(function, name, op, inputs text, output shape text)]."""
    nodes, lines, func = [], [], None
    with open(c_path) as f:
        src = f.read().splitlines()
    for ln in src:
        m = FUNC_RE.match(ln)
        if m:
            func = m[1]
        elif func and ln == "}":
            lines.append("    prof_at(-1);")
            func = None
        elif func:
            n = NODE_RE.match(ln)
            if n:
                lines.append(f"    prof_at({len(nodes)});")
                nodes.append((func, n[1], n[2], n[3], n[4]))
        lines.append(ln)
    # the prologue after the generated includes (the first line that is not a comment or #include)
    at = next(i for i, ln in enumerate(lines) if ln.startswith("#include")) if any(
        ln.startswith("#include") for ln in lines) else 0
    lines.insert(at, PROLOGUE % {"n": max(len(nodes), 1)})
    with open(out_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return nodes


def shapes(text):
    return [[int(x) for x in m.split(",") if x] for m in SHAPE_RE.findall(text)]


def gemm_macs(inputs, out):
    """multiply-adds of a MatMul/Gemm from the shapes in its comment: output elements x the reduced dim
    (the dim of the first input that is not the output's row count; either when they agree)."""
    ins, o = shapes(inputs), shapes(out)[0]
    if not ins or not o or len(ins[0]) < 2:
        return 0
    a = ins[0]
    k = a[-1] if a[-2] == o[-2] else a[-2]
    n = 1
    for x in o:
        n *= x
    return n * k


def kind_of(node):
    """Layer kind of a forward node of `onnxtune dump --json`."""
    op = node["op"]
    if op == "Conv":
        at = node.get("attrs", {})
        k = at.get("kernel_shape") or node["inputs"][1]["shape"][2:]
        cin = node["inputs"][0]["shape"][1]
        g = at.get("group", 1)
        s = max(at.get("strides", [1]))
        return (f"conv {'x'.join(map(str, k))}" + (" depthwise" if g > 1 and g == cin else "") +
                (f" /{s}" if s > 1 else "") + (" (stem, 3 channels in)" if cin == 3 else ""))
    if op in ("MatMul", "Gemm"):
        if any(i.get("role") == "param" for i in node["inputs"][:2]):
            return f"linear ({op}, weights)"
        return "attention (MatMul of two activations)"
    return op


def analyse(a, cfg, prog_dir, dump, rows_out, peaks):
    m, s, sc = cfg
    name = f"{m}-{s}-{sc}"
    with open(os.path.join(prog_dir, "nodes.json")) as f:
        nodes = json.load(f)
    times = {}
    with open(os.path.join(prog_dir, "prof.txt")) as f:
        for ln in f:
            k, n, t = ln.split()
            times[int(k)] = (int(n), float(t))
    by_name = {n["name"]: n for n in dump["nodes"]}
    # steps = calls of the step function's first node
    first = next(i for i, nd in enumerate(nodes) if nd[0] in STEP_FUNCS and times.get(i, (0,))[0] > 0)
    steps = times[first][0]
    agg = collections.defaultdict(lambda: [0.0, 0.0, 0])   # (kind, direction) -> [flop, s, nodes]
    total = 0.0
    for i, (func, nname, op, ins, out) in enumerate(nodes):
        calls, t = times.get(i, (0, 0.0))
        if calls == 0:
            continue
        total += t
        base = nname.split("_grad_")[0]
        fwd = by_name.get(base)
        if func in UPDATE_FUNCS:
            kind, direction, macs = "optimizer update", "update", 0
        elif "_grad_" in nname:
            kind = kind_of(fwd) if fwd else ("head (linear)" if op in ("MatMul", "Gemm") else op)
            direction = {"ConvGradInput": "bwd-data", "ConvGradWeight": "bwd-weight"}.get(op, "bwd")
            if op in ("ConvGradInput", "ConvGradWeight") and fwd:
                macs = fwd.get("flops") or 0
            elif op in ("MatMul", "Gemm"):
                macs = gemm_macs(ins, out)
            else:
                macs = 0
            if op in ("MatMul", "Gemm"):
                direction = "bwd (MatMul)"
            elif direction == "bwd":
                kind = f"{op} (of {kind})" if kind != op else op
        else:
            direction = "fwd"
            if fwd:
                kind, macs = kind_of(fwd), fwd.get("flops") or 0
            else:   # the new head, the loss: not in the ONNX model
                kind = "head + loss" if op not in ("MatMul", "Gemm") else "head (linear)"
                macs = gemm_macs(ins, out) if op in ("MatMul", "Gemm") else 0
            # a batch-1 features node runs 16 times a step: dump's FLOPs at batch 16 are per step already
        r = agg[(kind, direction)]
        r[0] += 2.0 * macs   # FLOPs per step (dump counts a multiply-add once)
        r[1] += t / steps
        r[2] += 1
    step_s = total / steps
    calls = sum(n for n, _ in times.values()) / steps
    fma, sg = peaks
    print(f"\n### {name}: {steps} steps, {calls:.0f} node calls a step; CPU per step in nodes {step_s * 1e3:.1f} ms "
          f"(1 thread); peaks: FMA loop "
          f"{fma:.1f} GFLOP/s, sgemm 1024^3 {sg:.1f} GFLOP/s\n")
    print("| layer kind | direction | GFLOP / step | CPU ms / step | share | GFLOP/s | % FMA peak | % sgemm |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for (kind, direction), (flop, t, n) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
        gfs = flop / t * 1e-9 if flop and t else 0.0
        rows.append({"kind": kind, "direction": direction, "gflop": flop * 1e-9, "ms": t * 1e3, "nodes": n,
                     "share": t / step_s, "gflops": gfs})
        if t / step_s < 0.002 and not flop:
            continue
        # GFLOP/s against the peaks only for GEMM-shaped kinds; dump's count for BN, activations, pools, ...
        # (an element or two a FLOP) says nothing about a memory-bound pass
        gemm = kind.startswith(("conv", "linear", "attention", "head (linear)"))
        g = f"{flop * 1e-9:.3f}" if flop and gemm else "-"
        print(f"| {kind} | {direction} | {g} | {t * 1e3:.1f} | {100 * t / step_s:.1f} % | "
              + (f"{gfs:.1f} | {100 * gfs / fma:.0f} % | {100 * gfs / sg:.0f} % |" if flop and gemm
                 else "- | - | - |"))
    flop_all = sum(r["gflop"] for r in rows if r["kind"].startswith(("conv", "linear", "attention", "head (linear)")))
    print(f"| **all nodes** | | {flop_all:.3f} | {step_s * 1e3:.1f} | 100 % | {flop_all / step_s:.1f} | "
          f"{100 * flop_all / step_s / fma:.0f} % | {100 * flop_all / step_s / sg:.0f} % |")
    with open(os.path.join(prog_dir, "run.json")) as f:
        run = json.load(f)
    outside = run["cpu"] - total
    print(f"\nwhole run: CPU {run['cpu']:.2f} s, of which in nodes {total:.2f} s, outside nodes {outside:.2f} s "
          f"(start-up, data loading, trainer; the node timer counts the main thread only)")
    rows_out[name] = {"steps": steps, "node_calls_per_step": calls, "step_cpu_s": step_s, "run_cpu_s": run["cpu"], "rows": rows,
                      "peaks": {"fma": fma, "sgemm": sg}}


def prepare(a, cfg, work):
    """Compile (with --emit-c, recording cc's command), instrument, rebuild, run; files in WORK/NAME/."""
    m, s, sc = cfg
    name = f"{m}-{s}-{sc}"
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    onnx = os.path.join(work, f"{m}-{s}.onnx")
    if not os.path.exists(onnx):
        ft.export_onnx(m, s, onnx)
    wrapper = os.path.join(work, "cc-record.py")
    with open(wrapper, "w") as f:
        f.write(CC_WRAPPER)
    os.chmod(wrapper, 0o755)
    cclog = os.path.join(d, "cc.jsonl")
    if os.path.exists(cclog):
        os.remove(cclog)
    prog = os.path.join(d, "prog")
    opts = ["--head", f"linear:{ft.CLASSES}", "--batch", str(ft.BATCH), "--optimizer", "sgd", "--momentum",
            str(ft.MOMENTUM), "--lr", str(ft.LR), "--no-shuffle"] + ft.onnxtune_train_opts(m, sc)
    subprocess.run([a.onnxtune, "compile", onnx] + opts + ["--emit-c", "-o", prog], check=True, cwd=d,
                   env=dict(os.environ, CC=wrapper, LAYERPROF_CCLOG=cclog), stderr=subprocess.DEVNULL)
    with open(cclog) as f:
        cmd = [json.loads(ln) for ln in f if ln.strip()]
    if len(cmd) != 1:
        sys.exit(f"layerprof.py: expected one cc call, got {len(cmd)}")
    cwd, argv = cmd[0]["cwd"], cmd[0]["argv"]
    c_src = next(x for x in argv if x.endswith(".c"))
    c_path = c_src if os.path.isabs(c_src) else os.path.join(cwd, c_src)
    nodes = instrument(c_path, os.path.join(d, "prog_prof.c"))
    with open(os.path.join(d, "nodes.json"), "w") as f:
        json.dump(nodes, f)
    o = argv.index("-o")
    argv = [x for x in argv if x != "-Werror"]
    argv[o + 1] = os.path.join(d, "prog_prof")
    argv[argv.index(c_src)] = os.path.join(d, "prog_prof.c")
    subprocess.run(["cc"] + argv, check=True, cwd=cwd)
    data = ft.make_data(s, work)
    env = dict(ft.thread_env(1), ONNXTUNE_PROF_OUT=os.path.join(d, "prof.txt"))
    wall, cpu, rss, _ = ft.run_child([os.path.join(d, "prog_prof"), "--train-x", data[0], "--train-y", data[1],
                                      "--no-shuffle", "--quiet", "--feature-cache", "off", "--threads", "1",
                                      "--epochs", str(a.epochs)], env)
    with open(os.path.join(d, "run.json"), "w") as f:
        json.dump({"wall": wall, "cpu": cpu, "rss": rss, "load": ft.loadavg()}, f)
    dump = os.path.join(d, "dump.json")
    with open(dump, "w") as f:
        subprocess.run([a.onnxtune, "dump", onnx, "--json", "-b", str(ft.BATCH)], stdout=f,
                       check=True)
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onnxtune", default=os.path.join(os.path.dirname(HERE), "build", "onnxtune"))
    ap.add_argument("--models", default="resnet18,mobilenet_v2,vit")
    ap.add_argument("--sizes", default="224", help="input sizes of the CNNs (vit: always 64)")
    ap.add_argument("--scenarios", default="A,B")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--peak-reps", type=int, default=5)
    ap.add_argument("--work", default=None)
    ap.add_argument("--report-only", action="store_true", help="re-read WORK's runs, measure nothing but the peaks")
    ap.add_argument("--sgemm-peak", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.sgemm_peak:
        return sgemm_peak(a.sgemm_peak)
    work = os.path.abspath(a.work or os.path.join(os.path.dirname(os.path.abspath(a.onnxtune)), "bench-layerprof"))
    os.makedirs(work, exist_ok=True)
    cfgs = []
    for m in a.models.split(","):
        for s in ([ft.VIT_SIZE] if m == "vit" else [int(x) for x in a.sizes.split(",")]):
            cfgs += [(m, s, sc) for sc in a.scenarios.split(",") if not (m == "vit" and sc == "Bbn")]
    print(f"# {time.strftime('%Y-%m-%d %H:%M %Z')}, load {ft.loadavg():.2f}", flush=True)
    peaks = measure_peaks(work, a.peak_reps)
    print(f"# peaks (1 thread, CPU time): FMA loop {peaks[0]:.1f} GFLOP/s, sgemm 1024^3 {peaks[1]:.1f} GFLOP/s",
          flush=True)
    results = {}
    for cfg in cfgs:
        d = os.path.join(work, "-".join(map(str, cfg))) if a.report_only else prepare(a, cfg, work)
        with open(os.path.join(d, "dump.json")) as f:
            dump = json.load(f)
        analyse(a, cfg, d, dump, results, peaks)
        print(f"# load {ft.loadavg():.2f}", flush=True)
    peaks2 = measure_peaks(work, a.peak_reps)
    print(f"\npeaks after the runs: FMA loop {peaks2[0]:.1f} GFLOP/s, sgemm 1024^3 {peaks2[1]:.1f} GFLOP/s; load "
          f"{ft.loadavg():.2f}")
    with open(os.path.join(work, "layerprof.json"), "w") as f:
        json.dump({"date": time.strftime("%Y-%m-%d %H:%M %Z"), "peaks_before": peaks, "peaks_after": peaks2,
                   "programs": results}, f, indent=1)


if __name__ == "__main__":
    main()
