"""infer.py - forward-pass time of zoo models: onnxtune (generated C, timed inside one process by
bench/infer_harness.c) against PyTorch (bench/infer_torch.py) and ONNX Runtime (bench/infer_ort.js),
interleaved round by round, with onnxtune's GFLOP/s next to OpenBLAS sgemm's (bench/kernels.c) from the
same run. It checks no results (tests/zoo.sh does) and exports nothing (models/export.py does).

Run (after `make build`, `models/export.py --out build/zoo --only resnet18,mobilenet_v2` and
`cd bench && ONNXRUNTIME_NODE_INSTALL=skip npm install`):
  /usr/bin/python3 bench/infer.py [--models resnet18,mobilenet_v2] [--batches 1,16] [--threads 1,2]
                                  [--rounds 3] [--repeat 10] [--max-load 1.5] [--wait 600]
Prints a markdown table; every measurement goes to WORK/results.json (WORK: --work, default BUILD/bench-infer).
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, "bench")
TUNED_MALLOC = "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184"


def run(cmd, env=None, timeout=3600, cwd=None):
    p = subprocess.run(cmd, env=env, cwd=cwd, timeout=timeout, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}\n{p.stderr.strip()[-2000:]}")
    return p.stdout


def parse_times(out):
    """'median_s=0.1 min_s=... max_s=...' -> dict of floats."""
    return {k: float(v) for k, v in re.findall(r"(\w+_s)=([0-9.eE+-]+)", out)}


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def wait_for_quiet(max_load, wait, what):
    """Sleep in 30 s steps until the 1-minute load is below max_load or `wait` seconds have passed."""
    t0 = time.time()
    while True:
        load = loadavg()
        if load < max_load or time.time() - t0 >= wait:
            if load >= max_load:
                print(f"# {what}: load {load:.2f} still >= {max_load} after {wait:.0f} s; measuring anyway",
                      flush=True)
            return load
        print(f"# {what}: load {load:.2f} >= {max_load}, waiting", flush=True)
        time.sleep(30)


def source_dir(build):
    """The source tree a CMake build dir was configured from (its headers must match its libraries)."""
    with open(os.path.join(build, "CMakeCache.txt")) as f:
        for line in f:
            if line.startswith("CMAKE_HOME_DIRECTORY:"):
                return line.split("=", 1)[1].strip()
    return REPO


def build_prog(a, model, batch, work, onnxtune=None, suffix="", env=None):
    """onnxtune compile --emit-c (with `env` added to the environment), then the harness around the
    generated file. Returns (binary, MACs)."""
    onnxtune = onnxtune or a.onnxtune
    onnx = os.path.join(a.zoo, model, "model.onnx")
    if not os.path.exists(onnx):
        sys.exit(f"infer.py: {onnx} is missing: /usr/bin/python3 models/export.py --out {a.zoo} --only {model}")
    prog = os.path.join(work, f"{model}-b{batch}{suffix}")
    t0 = time.time()
    run([onnxtune, "compile", onnx, "--infer", "--batch", str(batch), "--emit-c", "-o", prog],
        env=dict(os.environ, **(env or {})))
    compile_s = time.time() - t0
    build = os.path.dirname(os.path.abspath(onnxtune))
    src = source_dir(build)
    cc = os.environ.get("CC", "cc").split()
    run(cc + ["-std=c11", "-D_POSIX_C_SOURCE=200809L", "-O2", "-fopenmp", f'-DMODEL_C="{prog}.c"'] + runtime_includes(src) +
              [f"-Wa,-I{work}", os.path.join(BENCH, "infer_harness.c")] + runtime_libs(build) +
              openblas_link() + ["-lm", "-o", prog + ".bench"])
    dump = json.loads(run([onnxtune, "dump", onnx, "--batch", str(batch), "--json"]))
    return prog + ".bench", dump["flops"], dump.get("flops_missing_nodes", 0), compile_s


OPENBLAS_OPENMP = "/usr/lib/x86_64-linux-gnu/openblas-openmp"
RUNTIME_PARTS = ["program", "data", "kernels", "common"]    # headers and archives, in link order


def runtime_includes(src):
    return [arg for part in RUNTIME_PARTS for arg in ("-I", os.path.join(src, part))]


def runtime_libs(build):
    """The archives generated programs link (as codegen/cc.c does), and oneDNN when the build uses it."""
    libs = [os.path.join(build, f"libonnxtune_{part}.a") for part in RUNTIME_PARTS]
    with open(os.path.join(build, "CMakeCache.txt")) as f:
        if any(line.startswith("ONNXTUNE_DNNL:BOOL=ON") for line in f):
            libs.append("-ldnnl")
    return libs


def openblas_link():
    """Link the OpenBLAS the build uses (its OpenMP build: one thread pool with our OpenMP loops)."""
    if os.path.exists(os.path.join(OPENBLAS_OPENMP, "libopenblas.so")):
        return [os.path.join(OPENBLAS_OPENMP, "libopenblas.so"), "-Wl,-rpath," + OPENBLAS_OPENMP]
    return ["-lopenblas"]


def sgemm_gflops(a, work, max_threads):
    """bench/kernels.c's square sgemm GFLOP/s at 1..max_threads: {size: [gflops per thread count]}."""
    build = os.path.dirname(os.path.abspath(a.onnxtune))
    exe = os.path.join(work, "bench_kernels")
    cc = os.environ.get("CC", "cc").split()
    run(cc + ["-std=c11", "-D_POSIX_C_SOURCE=200809L", "-O2", "-fopenmp",
              "-I", "/usr/include/x86_64-linux-gnu/openblas-openmp"] + runtime_includes(source_dir(build)) +
             [os.path.join(BENCH, "kernels.c")] + runtime_libs(build) + openblas_link() + ["-lm", "-o", exe])
    env = dict(os.environ, OMP_WAIT_POLICY="passive")
    out = run([exe, str(max_threads)], env=env)
    res = {}
    for line in out.splitlines():
        m = re.match(r"sgemm (\d+)x\1x\1\s+(.*)", line)
        if m:
            # per thread count: ms, median GF/s, and in newer versions a "(best)" GF/s
            nums = [float(x) for x in m.group(2).replace("(", " ").replace(")", " ").split()]
            step = 3 if len(nums) == 3 * max_threads else 2
            res[int(m.group(1))] = nums[1::step]
    return res, out


def measure(a, kind, model, batch, threads, prog):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    if a.cpu_time:
        env["BENCH_CPU_TIME"] = "1"
    rep, warm = str(a.repeat), str(a.warmup)
    if kind.startswith("onnxtune") or kind == "baseline":
        if kind == "onnxtune_passive":
            env["OMP_WAIT_POLICY"] = "passive"
        if kind == "onnxtune_avx512":  # OpenBLAS picks its AVX-512 kernels (BENCHMARKING.md)
            env.pop("OPENBLAS_CORETYPE", None)
            env.pop("OPENBLAS_L2_SIZE", None)
        out = run([prog, "--threads", str(threads), "--repeat", rep, "--warmup", warm], env=env)
    elif kind == "pytorch":
        env["GLIBC_TUNABLES"] = TUNED_MALLOC
        out = run([a.python, os.path.join(BENCH, "infer_torch.py"), model, str(batch), str(threads),
                   "--repeat", rep, "--warmup", warm], env=env)
    else:
        out = run([a.node, os.path.join(BENCH, "infer_ort.js"), os.path.join(a.zoo, model, "model.onnx"),
                   str(batch), str(threads), rep, warm], env=env)
    return parse_times(out)["median_s"]


def ms(seconds):
    v = seconds * 1e3
    return f"{v:.1f}" if v >= 10 else f"{v:.3g}"


def spread(xs):
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}–{max(xs):.2f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onnxtune", default=os.path.join(REPO, "build", "onnxtune"))
    ap.add_argument("--zoo", default=None, help="models/export.py's output (default: BUILD/zoo)")
    ap.add_argument("--work", default=None, help="programs and results (default: BUILD/bench-infer)")
    ap.add_argument("--models", default="resnet18,mobilenet_v2")
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (A B C A B C ...)")
    ap.add_argument("--repeat", type=int, default=10, help="timed forward passes per process (median)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--max-load", type=float, default=1.5)
    ap.add_argument("--wait", type=float, default=600, help="seconds to wait for the load to drop")
    ap.add_argument("--no-ort", action="store_true")
    ap.add_argument("--no-passive", action="store_true", help="skip the OMP_WAIT_POLICY=passive onnxtune run")
    ap.add_argument("--avx512", action="store_true",
                    help="also run onnxtune with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset (AVX-512 sgemm)")
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--node", default=shutil.which("node") or "node")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time by process CPU time in every program (1 thread on a loaded machine), not wall time")
    ap.add_argument("--baseline", metavar="ONNXTUNE",
                    help="a second onnxtune build (e.g. before a change), timed in the same rounds")
    ap.add_argument("--baseline-env", metavar="NAME=VALUE", action="append", default=[],
                    help="compile the baseline with this in the environment (e.g. ONNXTUNE_BLOCKED=0); "
                         "without --baseline, with --onnxtune")
    a = ap.parse_args()
    baseline_env = dict(kv.split("=", 1) for kv in a.baseline_env)
    if baseline_env and not a.baseline:
        a.baseline = a.onnxtune
    build = os.path.dirname(os.path.abspath(a.onnxtune))
    a.zoo = a.zoo or os.path.join(build, "zoo")
    work = os.path.abspath(a.work or os.path.join(build, "bench-infer"))
    os.makedirs(work, exist_ok=True)
    models = [m for m in a.models.split(",") if m]
    batches = [int(b) for b in a.batches.split(",") if b]
    threads = [int(t) for t in a.threads.split(",") if t]
    kinds = ["onnxtune"] + ([] if a.no_passive else ["onnxtune_passive"]) + \
        (["onnxtune_avx512"] if a.avx512 else []) + (["baseline"] if a.baseline else []) + ["pytorch"] + \
            ([] if a.no_ort else ["ort"])
    if not a.no_ort and not os.path.isdir(os.path.join(BENCH, "node_modules", "onnxruntime-node")):
        sys.exit("infer.py: cd bench && ONNXRUNTIME_NODE_INSTALL=skip npm install   (or --no-ort)")

    progs = {}
    for m in models:
        for b in batches:
            progs[m, b] = build_prog(a, m, b, work)
            if a.baseline:
                progs[m, b, "baseline"] = build_prog(a, m, b, work, onnxtune=a.baseline, suffix="-baseline",
                                                     env=baseline_env)
            print(f"# built {m} batch {b}: {progs[m, b][1] * 2 / 1e9:.2f} GFLOP per pass "
                  f"(compile {progs[m, b][3]:.1f} s)", flush=True)

    load_start = wait_for_quiet(a.max_load, a.wait, "start")
    sgemm, sgemm_text = sgemm_gflops(a, work, max(threads))
    print(f"# sgemm GFLOP/s (bench/kernels.c, OMP_WAIT_POLICY=passive): {sgemm}", flush=True)

    results = {}   # (model, batch, threads, kind) -> [seconds per round]
    loads = [load_start]
    for r in range(a.rounds):
        loads.append(wait_for_quiet(a.max_load, min(a.wait, 120), f"round {r + 1}"))
        for m in models:
            for b in batches:
                for t in threads:
                    for k in kinds:
                        if k == "onnxtune_passive" and t == 1:
                            continue
                        prog = progs[m, b, "baseline"][0] if k == "baseline" else progs[m, b][0]
                        s = measure(a, k, m, b, t, prog)
                        results.setdefault((m, b, t, k), []).append(s)
                        print(f"# round {r + 1} {m} b{b} t{t} {k}: {ms(s)} ms", flush=True)
    loads.append(loadavg())

    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    env_note = {k: os.environ.get(k, "(unset)") for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    print()
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}, {cpu}, {os.cpu_count()} CPUs; 1-min load before rounds/after: "
          + ", ".join(f"{x:.2f}" for x in loads) + f"; OPENBLAS_CORETYPE={env_note['OPENBLAS_CORETYPE']}")
    print(f"median ms per forward pass (median over {a.rounds} rounds of the median of {a.repeat} passes); "
          "ratios: median (min–max) over rounds; GFLOP = 2 x `onnxtune dump` flops (multiply-adds)")
    print()
    head = ["model", "batch", "thr", "onnxtune ms"] + (["onnxtune passive ms"] if not a.no_passive else []) + \
        (["onnxtune AVX-512 ms"] if a.avx512 else []) + \
        (["baseline ms"] if a.baseline else []) + \
        ["PyTorch ms"] + ([] if a.no_ort else ["ORT ms"]) + ["onnxtune/PyTorch"] + \
        ([] if a.no_ort else ["onnxtune/ORT"]) + \
        (["baseline/PyTorch"] + ([] if a.no_ort else ["baseline/ORT"]) if a.baseline else []) + \
        ["onnxtune GFLOP/s", "sgemm 1024 GFLOP/s"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    rows = []
    for m in models:
        for b in batches:
            for t in threads:
                ot = results[m, b, t, "onnxtune"]
                pt = results[m, b, t, "pytorch"]
                cells = [m, str(b), str(t), ms(statistics.median(ot))]
                if not a.no_passive:
                    ps = results.get((m, b, t, "onnxtune_passive"))
                    cells.append(ms(statistics.median(ps)) if ps else "=")
                if a.avx512:
                    cells.append(ms(statistics.median(results[m, b, t, "onnxtune_avx512"])))
                if a.baseline:
                    cells.append(ms(statistics.median(results[m, b, t, "baseline"])))
                cells.append(ms(statistics.median(pt)))
                if not a.no_ort:
                    cells.append(ms(statistics.median(results[m, b, t, "ort"])))
                cells.append(spread([x / y for x, y in zip(ot, pt)]))
                if not a.no_ort:
                    cells.append(spread([x / y for x, y in zip(ot, results[m, b, t, "ort"])]))
                if a.baseline:
                    bt = results[m, b, t, "baseline"]
                    cells.append(spread([x / y for x, y in zip(bt, pt)]))
                    if not a.no_ort:
                        cells.append(spread([x / y for x, y in zip(bt, results[m, b, t, "ort"])]))
                gflop = 2 * progs[m, b][1] / 1e9
                cells.append(f"{gflop / statistics.median(ot):.1f}")
                sg = sgemm.get(1024)
                cells.append(f"{sg[t - 1]:.1f}" if sg and t <= len(sg) else "?")
                print("| " + " | ".join(cells) + " |")
                rows.append(cells)
    with open(os.path.join(work, "results.json"), "w") as f:
        json.dump({"date": time.strftime("%Y-%m-%d %H:%M %Z"), "cpu": cpu, "loads": loads, "env": env_note,
                   "repeat": a.repeat, "rounds": a.rounds, "sgemm": sgemm, "sgemm_text": sgemm_text,
                   "flops_macs": {f"{k[0]}@{k[1]}": v[1] for k, v in progs.items() if len(k) == 2},
                   "flops_missing_nodes": {f"{k[0]}@{k[1]}": v[2] for k, v in progs.items() if len(k) == 2},
                   "times": [[m, b, t, k, v] for (m, b, t, k), v in results.items()],
                   "table": [head] + rows}, f, indent=1)


if __name__ == "__main__":
    main()
