"""finetune.py - seconds per fine-tuning step: onnxtune's compiled training program against PyTorch
1.13, interleaved round by round in one run, with peak memory, and the ratios as a table and JSON.
It checks no results (the tests compare onnxtune's steps with PyTorch's); it only times them.

Setup, all fixed: batch 16, SGD lr 0.01 momentum 0.9, cross-entropy on a new linear:10 head, 64 random
samples (4 steps per epoch), random (weights=None) torchvision models exported here at opset 17 with
BatchNormalization kept. Scenarios (what trains besides the new head):
  A    nothing: the backbone is frozen
  B    the last stage (resnet18 layer4.*, mobilenet_v2 features[14:], vit the last encoder layer + ln)
  Bbn  B with --bn-train: the trained stage's BatchNorms use batch statistics (PyTorch: train mode);
       not for vit, which has no BatchNorm
  all  every parameter
Other BatchNorms run on their running statistics (PyTorch: those modules in eval mode).

onnxtune: `onnxtune compile` once per (model, size, scenario); one step = (wall time of PROG --epochs 3
- wall time of PROG --epochs 1) / 8, so start-up, weight loading and data loading cancel.
PyTorch: a child process (this file with --torch-worker) with torch.set_num_threads(T),
OPENBLAS_NUM_THREADS=T and glibc malloc tuned as /work/shared/BENCHMARKING.md says (PyTorch at its
best); one step = the median of --steps timed steps after 2 warm-up steps.
Peak RSS: /usr/bin/time's of each child (onnxtune: the 3-epoch run). Every time is also taken as CPU
time (user + system), which a loaded machine disturbs much less than wall time: at 1 thread its
ratio is the robust one; at 2 threads only wall time says what a user gets.

Run (after the build; a resnet18 224 row costs 16 onnxtune steps and 10 PyTorch steps per round,
so the whole default set takes a while; pick a subset):
  /usr/bin/python3 bench/finetune.py [--models resnet18,mobilenet_v2,vit] [--sizes 224,64]
      [--scenarios A,B,Bbn,all] [--threads 1,2] [--rounds 3] [--onnxtune build/onnxtune]
      [--baseline OTHER/onnxtune]   (a second build's programs in the same rounds, e.g. before a change)
Prints markdown tables after every round: per row the ratios, peak RSS and its ratio, and whether issue 9's
targets are met (step <= 0.7x PyTorch: CPU ratio at 1 thread, wall ratio at 2; peak RSS <= 0.6x); the
2-over-1-thread speed-up of both sides (target >= 1.8x for the CNNs at 224); every program's compile time
(codegen + cc; target resnet18 < 15 s) and the values it trains against PyTorch's requires_grad count.
Everything measured goes to WORK/finetune.json after every measurement (--work, default
BUILD/bench-finetune). GFLOP/s per layer kind: bench/layerprof.py.

--feature-cache-run (issue 10): whole multi-epoch runs of scenario A, the feature cache against PyTorch
recomputing the backbone every epoch (see feature_cache_run and bench/README.md):
  /usr/bin/python3 bench/finetune.py --feature-cache-run --models resnet18 --sizes 224 --threads 1
      [--fc-samples 256] [--fc-epochs 10] [--torch-epochs 3] [--rounds 1] [--no-cv] [--reuse-programs]
writes WORK/feature-cache-run.json after every round; --fc-report JSON prints its report again.
"""
import argparse
import fnmatch
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TUNED_MALLOC = "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184"
BATCH, SAMPLES, CLASSES, LR, MOMENTUM = 16, 64, 10, 0.01, 0.9
STEPS_PER_EPOCH = SAMPLES // BATCH
VIT_SIZE = 64   # the transformer runs at its own input size whatever --sizes says

# What scenario B trains: globs on PyTorch's parameter names, and onnxtune's options for the same.
# The ONNX initializers keep PyTorch's names, except the ViT's Linear weights on 3-D inputs, which
# export as MatMul weights `onnx::MatMul_<n>`: there --train-from the last encoder layer's first node.
LAST_STAGE = {
    "resnet18": (["layer4.*"], ["--train", "layer4.*"]),
    "mobilenet_v2": (["features.1[4-8].*"], ["--train", "features.1[4-8].*"]),
    "vit": (["encoder.layers.encoder_layer_3.*", "encoder.ln.*"],
            ["--train-from", "/encoder/layers/encoder_layer_3/ln_1/LayerNormalization"]),
}


# ---------------------------------------------------------------- the models (PyTorch side)

def build_model(name):
    """A torchvision model, random init (no downloads here), eval mode, with its ImageNet head."""
    import torch
    import torchvision
    torch.manual_seed(0)
    if name == "resnet18":
        return torchvision.models.resnet18(weights=None).eval()
    if name == "mobilenet_v2":
        return torchvision.models.mobilenet_v2(weights=None).eval()
    if name == "vit":   # a ViT-Tiny-like encoder on 64x64 images: 64 patches of 8x8 + class token
        return torchvision.models.VisionTransformer(image_size=VIT_SIZE, patch_size=8, num_layers=4,
                                                    num_heads=3, hidden_dim=192, mlp_dim=768).eval()
    sys.exit(f"finetune.py: unknown model {name} (resnet18, mobilenet_v2, vit)")


def replace_head(model, name):
    """model's last Linear -> nn.Linear(F, 10), as onnxtune's --head linear:10 does."""
    import torch.nn as nn
    if name == "resnet18":
        model.fc = nn.Linear(model.fc.in_features, CLASSES)
    elif name == "mobilenet_v2":
        model.classifier[-1] = nn.Linear(model.classifier[-1].in_features, CLASSES)
    else:
        model.heads.head = nn.Linear(model.heads.head.in_features, CLASSES)


def trainable_globs(model, scenario):
    return {"A": [], "B": LAST_STAGE[model][0], "Bbn": LAST_STAGE[model][0], "all": ["*"]}[scenario]


def onnxtune_train_opts(model, scenario):
    return {"A": [], "B": LAST_STAGE[model][1], "Bbn": LAST_STAGE[model][1] + ["--bn-train"],
            "all": ["--train", "*"]}[scenario]


def export_onnx(name, size, path):
    """opset 17, dynamic batch, BatchNormalization kept as nodes (TrainingMode.PRESERVE). As
    models/export.py does, parameters are made distinct and BN statistics non-trivial first: the
    exporter would merge equal initializers (BN ones and zeros) into one, tying them together."""
    import torch
    import warnings
    sys.path.insert(0, os.path.join(REPO, "models"))
    import common
    model = build_model(name)
    common.make_params_distinct(model, seed=1234)
    common.calibrate_batchnorm(model, lambda: torch.randn(4, 3, size, size) * 1.5 + 0.2, steps=2)
    x = torch.randn(2, 3, size, size)
    warnings.simplefilter("ignore")   # PRESERVE mode warns about constant folding; harmless in eval mode
    torch.onnx.export(model, (x,), path, opset_version=17, do_constant_folding=True,
                      input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "N"}, "logits": {0: "N"}},
                      training=torch.onnx.TrainingMode.PRESERVE)


def torch_epochs_worker(a):
    """--feature-cache-run's PyTorch side: scenario A over a.fc_samples random images for a.torch_epochs
    epochs of ceil(N / 16) steps (a short last batch is just shorter: onnxtune pads it, so this favours
    PyTorch if anything), the
    backbone recomputed every epoch as PyTorch does. Prints JSON with each epoch's wall and CPU seconds."""
    import torch
    import torch.nn as nn
    torch.set_num_threads(a.threads[0])
    name = a.models[0]
    model = build_model(name)
    model.requires_grad_(False)
    replace_head(model, name)
    model.train()
    for m in model.modules():   # frozen BatchNorm: running statistics
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=LR, momentum=MOMENTUM)
    loss_fn = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(1)
    n = a.fc_samples
    x = torch.randn(n, 3, a.sizes[0], a.sizes[0], generator=g)
    y = torch.randint(0, CLASSES, (n,), generator=g)
    walls, cpus = [], []
    for e in range(a.torch_epochs):
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(0, n, BATCH):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[i:i + BATCH]), y[i:i + BATCH])
            loss.backward()
            opt.step()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    print(json.dumps({"epoch_s": walls, "epoch_cpu_s": cpus}))


def torch_worker(a):
    """One PyTorch measurement in this (child) process: prints JSON with the median step time."""
    import torch
    import torch.nn as nn
    torch.set_num_threads(a.threads[0])
    model = build_model(a.models[0])
    model.requires_grad_(False)
    replace_head(model, a.models[0])   # new head: requires_grad=True
    globs = trainable_globs(a.models[0], a.scenarios[0])
    for pname, p in model.named_parameters():
        if any(fnmatch.fnmatchcase(pname, g) for g in globs):
            p.requires_grad_(True)
    model.train()
    for m in model.modules():   # BatchNorm: eval mode unless Bbn and its own parameters train
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.train(a.scenarios[0] == "Bbn" and m.weight.requires_grad)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=LR, momentum=MOMENTUM)
    loss_fn = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(SAMPLES, 3, a.sizes[0], a.sizes[0], generator=g)
    y = torch.randint(0, CLASSES, (SAMPLES,), generator=g)
    times, cpu = [], []
    for i in range(2 + a.steps):
        b = slice((i % STEPS_PER_EPOCH) * BATCH, (i % STEPS_PER_EPOCH + 1) * BATCH)
        t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[b]), y[b])
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    print(json.dumps({"step_s": statistics.median(times), "cpu_s": statistics.median(cpu),
                      "trainable": sum(p.numel() for p in params)}))


# ---------------------------------------------------------------- running children

def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


LAST_STDERR = [""]   # run_child's last child's stderr (onnxtune compile reports there what it trains)


def run_child(cmd, env):
    """Run cmd; returns (wall seconds, CPU seconds (user + system), peak RSS MiB, stdout). Exits with
    its stderr on failure. CPU time and peak come from /usr/bin/time: a child forked from this process
    would inherit this process's peak (Linux keeps ru_maxrss across exec), time's own child starts small."""
    with tempfile.NamedTemporaryFile("r") as res:
        t0 = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", "-o", res.name] + cmd, env=env, capture_output=True,
                           text=True)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            sys.exit(f"finetune.py: {' '.join(cmd)}: exit {p.returncode}\n{p.stderr[-2000:]}")
        rss, user, system = (float(x) for x in res.read().split()[-3:])
        LAST_STDERR[0] = p.stderr
        return wall, user + system, rss / 1024, p.stdout


def thread_env(threads):
    return dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))


def compile_prog(a, model, size, scenario, work, onnxtune=None, suffix=""):
    """onnxtune compile; returns (PROG, compile seconds, of which the C compiler's, CPU seconds)."""
    onnx = os.path.join(work, f"{model}-{size}.onnx")
    if not os.path.exists(onnx):
        export_onnx(model, size, onnx)
    prog = os.path.join(work, f"{model}-{size}-{scenario}{suffix}")
    opts = ["--head", f"linear:{CLASSES}", "--batch", str(BATCH), "--optimizer", "sgd",
            "--momentum", str(MOMENTUM), "--lr", str(LR), "--no-shuffle"] + onnxtune_train_opts(model, scenario)
    cc_log = prog + ".cc-time"
    if os.path.exists(cc_log):
        os.remove(cc_log)
    env = dict(os.environ, CC=f"/usr/bin/time -f %e -a -o {cc_log} {os.environ.get('CC', 'cc')}")
    t, cpu, _, _ = run_child([onnxtune or a.onnxtune, "compile", onnx] + opts + ["-o", prog], env)
    with open(cc_log) as f:
        cc = sum(float(line) for line in f if line.strip())
    m = re.search(r"trains (\d+) tensors, (\d+) values", LAST_STDERR[0])
    TRAINS[prog] = int(m[2]) if m else None
    return prog, t, cc, cpu


TRAINS = {}   # PROG -> the number of values `onnxtune compile` said it trains (checked against PyTorch's)


def onnxtune_step(prog, data, threads):
    """(seconds per step, CPU seconds per step, peak RSS MiB of the 3-epoch run, (wall, CPU) of each run)."""
    env = thread_env(threads)
    # --feature-cache off: a step computes the frozen backbone as PyTorch's does (the cache, on by default,
    # would make the 2 extra epochs of scenario A nearly free; --feature-cache-run measures that)
    base = [prog, "--train-x", data[0], "--train-y", data[1], "--no-shuffle", "--quiet", "--feature-cache", "off",
            "--threads", str(threads), "--epochs"]
    t1, c1, _, _ = run_child(base + ["1"], env)
    t3, c3, rss, _ = run_child(base + ["3"], env)
    extra = 2 * STEPS_PER_EPOCH
    return (t3 - t1) / extra, (c3 - c1) / extra, rss, (t1, c1, t3, c3)


def torch_step(a, model, size, scenario, threads):
    env = dict(thread_env(threads), GLIBC_TUNABLES=TUNED_MALLOC)
    cmd = [a.python, os.path.abspath(__file__), "--torch-worker", "--models", model, "--sizes", str(size),
           "--scenarios", scenario, "--threads", str(threads), "--steps", str(a.steps)]
    _, _, rss, out = run_child(cmd, env)
    r = json.loads(out)
    return r["step_s"], r["cpu_s"], rss, r["trainable"]


def make_data(size, work):
    import numpy as np
    rng = np.random.default_rng(1)
    x = os.path.join(work, f"x{size}.npy")
    y = os.path.join(work, "y.npy")
    np.save(x, rng.standard_normal((SAMPLES, 3, size, size), dtype=np.float32))
    np.save(y, rng.integers(0, CLASSES, SAMPLES, dtype=np.int64))
    return x, y


def spread(xs):
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}–{max(xs):.2f})"


# ---------------------------------------------------------------- --feature-cache-run (issue 10)

FEAT_RE = r"features of the (\d+) training samples \((\d+) bytes each\) computed in ([0-9.]+) s; ([0-9.]+) MiB (in memory|memory-mapped)"
EPOCH_RE = r"^epoch (\d+)/\d+:.*\| \S+ ([0-9.]+) samples/s"


def parse_run(out, n):
    """From a training program's stdout: the feature line's numbers and each epoch's wall seconds (samples
    / the printed rate, finer than the printed duration's 0.1 s)."""
    import re
    m = re.search(FEAT_RE, out)
    feat = {"samples": int(m[1]), "bytes": int(m[2]), "s": float(m[3]), "mib": float(m[4]), "where": m[5]} if m else None
    epochs = [n / float(e[1]) for e in re.findall(EPOCH_RE, out, re.M)]
    return feat, epochs


def fc_data(n, size, work):
    import numpy as np
    rng = np.random.default_rng(1)
    x = os.path.join(work, f"fc-x{size}-{n}.npy")
    y = os.path.join(work, f"fc-y-{n}.npy")
    if not os.path.exists(x):
        np.save(x, rng.standard_normal((n, 3, size, size), dtype=np.float32))
        np.save(y, rng.integers(0, CLASSES, n, dtype=np.int64))
    return x, y


def feature_cache_run(a, work):
    """Scenario A, whole runs: onnxtune --feature-cache auto (E epochs) and off (1 and 2 epochs: epoch 1
    and one later epoch, by difference), PyTorch (a.torch_epochs epochs, the rest extrapolated from its
    median later epoch), and onnxtune --lr 0.1,0.01,0.001 --cv 5 against a single run, all at 1 thread
    (a.threads[0]). Interleaved per round in the order auto, PyTorch, off, cv (reversed in odd rounds)."""
    t, n, E, size = a.threads[0], a.fc_samples, a.fc_epochs, a.sizes[0]
    env = thread_env(t)
    data = fc_data(n, size, work)
    results = {}
    progs = {}
    for m in a.models:   # --reuse-programs: a program compiled by an earlier run (compile times then 0)
        prog = os.path.join(work, f"{m}-{size}-A")
        ok = a.reuse_programs and os.path.exists(prog) and os.path.getmtime(prog) > os.path.getmtime(a.onnxtune)
        progs[m] = (prog, 0.0, 0.0, 0.0) if ok else compile_prog(a, m, size, "A", work)
    for m, (_, total, cc, cpu) in progs.items():
        print(f"# compiled {m}-{size}-A: {total:.1f} s (cc {cc:.1f} s; CPU {cpu:.1f} s)", flush=True)
    for r in range(a.rounds):
        for m in a.models:
            prog = progs[m][0]
            d = results.setdefault(m, {"auto": [], "auto1": [], "off1": [], "off2": [], "torch": [], "cv": [], "load": []})
            base = [prog, "--train-x", data[0], "--train-y", data[1], "--no-shuffle", "--threads", str(t)]

            def auto():
                # the whole run, as a user runs it: features computed (in memory), then E epochs
                w, c, rss, out = run_child(base + ["--epochs", str(E), "--feature-cache", "auto"], env)
                feat, ep = parse_run(out, n)
                d["auto"].append({"wall": w, "cpu": c, "rss": rss, "feat": feat, "epochs": ep})
                print(f"# {m} auto E={E}: wall {w:.1f} s CPU {c:.1f} s RSS {rss:.0f} MiB; features {feat}; "
                      f"epochs wall {' '.join(f'{x:.4f}' for x in ep)}", flush=True)
                w, c, rss, out = run_child(base + ["--epochs", "1", "--feature-cache", "auto"], env)
                d["auto1"].append({"wall": w, "cpu": c, "rss": rss})
                print(f"# {m} auto E=1: wall {w:.1f} s CPU {c:.1f} s", flush=True)
                # a later epoch's CPU time: with the features saved in a folder (--feature-cache DIR, computed
                # by the first run), a 1-epoch and an E-epoch run differ by E - 1 cached epochs alone
                cdir = os.path.join(work, f"fc-cache-{m}-{n}")
                run_child(base + ["--epochs", "1", "--feature-cache", cdir], env)
                disk = os.path.getsize(os.path.join(cdir, "train.features"))
                w1, c1, _, _ = run_child(base + ["--epochs", "1", "--feature-cache", cdir], env)
                wE, cE, rssE, _ = run_child(base + ["--epochs", str(E), "--feature-cache", cdir], env)
                d.setdefault("warm", []).append({"cpu1": c1, "cpuE": cE, "wall1": w1, "wallE": wE, "disk": disk})
                print(f"# {m} warm DIR: E=1 CPU {c1:.2f} s, E={E} CPU {cE:.2f} s; file {disk} bytes", flush=True)

            def off():
                for k, e in (("off1", 1), ("off2", 2)):
                    w, c, rss, out = run_child(base + ["--epochs", str(e), "--feature-cache", "off"], env)
                    d[k].append({"wall": w, "cpu": c, "rss": rss, "epochs": parse_run(out, n)[1]})
                    print(f"# {m} off E={e}: wall {w:.1f} s CPU {c:.1f} s RSS {rss:.0f} MiB", flush=True)

            def torch():
                cmd = [a.python, os.path.abspath(__file__), "--torch-worker", "--feature-cache-run", "--models", m,
                       "--sizes", str(size), "--threads", str(t), "--fc-samples", str(n),
                       "--torch-epochs", str(a.torch_epochs)]
                w, c, rss, out = run_child(cmd, dict(env, GLIBC_TUNABLES=TUNED_MALLOC))
                j = json.loads(out)
                d["torch"].append({"wall": w, "cpu": c, "rss": rss, **j})
                print(f"# {m} PyTorch {a.torch_epochs} epochs: wall {w:.1f} s CPU {c:.1f} s RSS {rss:.0f} MiB; epochs wall "
                      f"{' '.join(f'{x:.2f}' for x in j['epoch_s'])} CPU {' '.join(f'{x:.2f}' for x in j['epoch_cpu_s'])}",
                      flush=True)

            def cv():
                if not a.cv_check:
                    return
                w, c, rss, out = run_child(base + ["--epochs", str(E), "--feature-cache", "auto", "--lr",
                                                   "0.1,0.01,0.001", "--cv", "5"], env)
                d["cv"].append({"wall": w, "cpu": c, "rss": rss})
                print(f"# {m} --cv 5 x 3 lr, E={E}: wall {w:.1f} s CPU {c:.1f} s RSS {rss:.0f} MiB", flush=True)

            d["load"].append(open("/proc/loadavg").read().split()[:3])
            steps = [auto, torch, off, cv]
            for f in (steps if r % 2 == 0 else steps[::-1]):
                f()
            with open(os.path.join(work, "feature-cache-run.json"), "w") as fj:
                json.dump({"date": time.strftime("%Y-%m-%d %H:%M %Z"), "samples": n, "epochs": E, "size": size,
                           "threads": t, "torch_epochs": a.torch_epochs, "results": results}, fj, indent=1)
    fc_report(a, results)


def fc_report(a, results):
    n, E = a.fc_samples, a.fc_epochs
    med = statistics.median
    print(f"\nscenario A, {a.sizes[0]}x{a.sizes[0]}, {n} images, batch {BATCH}, {E} epochs, {a.threads[0]} thread(s); "
          f"seconds (CPU = user + system of the process, wall in brackets); medians over {a.rounds} round(s)")
    for m, d in results.items():
        au, au1, o1, o2, tc = d["auto"], d["auto1"], d["off1"], d["off2"], d["torch"]
        later_auto = med([x for r in au for x in r["epochs"][1:]])          # program's own epoch times (wall)
        # /usr/bin/time counts CPU in 0.01 s: a difference under 0.02 s is "below resolution", bounded by it
        later_auto_cpu = med([(r["cpuE"] - r["cpu1"]) / (E - 1) for r in d["warm"]])
        below = later_auto_cpu * (E - 1) < 0.02
        if below:
            later_auto_cpu = 0.02 / (E - 1)
        ep1_auto = med([r["epochs"][0] + r["feat"]["s"] for r in au])       # features + epoch 1's steps (wall)
        whole_auto_cpu, whole_auto_wall = med([r["cpu"] for r in au]), med([r["wall"] for r in au])
        off_ep1_cpu = med([r["cpu"] for r in o1])
        off_later_cpu = med([b["cpu"] - a_["cpu"] for a_, b in zip(o1, o2)])
        off_whole_cpu = off_ep1_cpu + (E - 1) * off_later_cpu
        t_ep1_cpu = med([r["epoch_cpu_s"][0] for r in tc])
        t_later_cpu = med([x for r in tc for x in r["epoch_cpu_s"][1:]])
        t_later_wall = med([x for r in tc for x in r["epoch_s"][1:]])
        # PyTorch's whole run: the measured process (start-up, model, data, its epochs) + the epochs not run
        t_whole_cpu = med([r["cpu"] for r in tc]) + (E - a.torch_epochs) * t_later_cpu
        feat = au[0]["feat"]
        print(f"\n{m}: features {feat['bytes']} B/sample, {feat['mib']} MiB {feat['where']}, file {d['warm'][0]['disk']} B; computed in "
              f"{med([r['feat']['s'] for r in au]):.2f} s")
        print(f"  onnxtune auto : epoch 1 (features + steps) {ep1_auto:.2f} s wall; later epochs CPU {'< ' if below else ''}{later_auto_cpu:.4f} s "
              f"(DIR runs' difference{', below /usr/bin/time resolution' if below else ''}), wall {later_auto:.4f} s (each: {' '.join(f'{x:.4f}' for x in au[0]['epochs'][1:])}); whole run CPU {whole_auto_cpu:.1f} s "
              f"(wall {whole_auto_wall:.1f}); 1-epoch run CPU {med([r['cpu'] for r in au1]):.1f} s; peak RSS "
              f"{max(r['rss'] for r in au):.0f} MiB")
        print(f"  onnxtune off  : epoch 1 run CPU {off_ep1_cpu:.1f} s; later epoch CPU {off_later_cpu:.2f} s; "
              f"whole run ({E} epochs, extrapolated) CPU {off_whole_cpu:.1f} s")
        print(f"  PyTorch       : epoch 1 CPU {t_ep1_cpu:.2f} s; later epochs CPU {t_later_cpu:.2f} s (wall "
              f"{t_later_wall:.2f}); whole run ({a.torch_epochs} measured, {E - a.torch_epochs} extrapolated) CPU "
              f"{t_whole_cpu:.1f} s; peak RSS {max(r['rss'] for r in tc):.0f} MiB")
        print(f"  ratios        : later epoch PyTorch CPU / onnxtune auto wall {t_later_cpu / later_auto:.0f}x, PyTorch CPU / "
              f"onnxtune CPU {'> ' if below else ''}{t_later_cpu / later_auto_cpu:.0f}x; "
              f"whole run PyTorch / onnxtune auto (CPU) {t_whole_cpu / whole_auto_cpu:.2f}x; "
              f"onnxtune off / auto whole (CPU) {off_whole_cpu / whole_auto_cpu:.2f}x")
        if d["cv"]:
            cvc = med([r["cpu"] for r in d["cv"]])
            print(f"  --cv 5 x 3 lr : CPU {cvc:.1f} s (wall {med([r['wall'] for r in d['cv']]):.1f}) = "
                  f"{cvc / whole_auto_cpu:.2f}x the single {E}-epoch run")
        print(f"  loads (1/5/15 min) at each round: {d['load']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onnxtune", default=os.path.join(REPO, "build", "onnxtune"))
    ap.add_argument("--baseline", metavar="ONNXTUNE", help="a second onnxtune (e.g. an older build), its programs "
                    "timed in the same rounds (column 'baseline')")
    ap.add_argument("--work", default=None, help="models, programs, data, finetune.json (default BUILD/bench-finetune)")
    ap.add_argument("--models", default="resnet18,mobilenet_v2,vit")
    ap.add_argument("--sizes", default="224,64", help="input sizes of the CNNs (vit: always 64)")
    ap.add_argument("--scenarios", default="A,B,Bbn,all")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (onnxtune, PyTorch, ...)")
    ap.add_argument("--steps", type=int, default=8, help="timed PyTorch steps per process (median)")
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--feature-cache-run", action="store_true",
                    help="scenario A whole runs: onnxtune --feature-cache auto/off against PyTorch's epochs (issue 10)")
    ap.add_argument("--fc-samples", type=int, default=256, help="--feature-cache-run: images")
    ap.add_argument("--fc-epochs", type=int, default=10, help="--feature-cache-run: onnxtune's epochs")
    ap.add_argument("--torch-epochs", type=int, default=3, help="--feature-cache-run: PyTorch's measured epochs")
    ap.add_argument("--fc-report", metavar="JSON", help="print the report of a saved feature-cache-run.json")
    ap.add_argument("--reuse-programs", action="store_true", help="--feature-cache-run: keep compiled programs")
    ap.add_argument("--no-cv", dest="cv_check", action="store_false", help="--feature-cache-run: skip --cv 5")
    a = ap.parse_args()
    a.models = [m for m in a.models.split(",") if m]
    a.sizes = [int(s) for s in a.sizes.split(",") if s]
    a.scenarios = [s for s in a.scenarios.split(",") if s]
    a.threads = [int(t) for t in a.threads.split(",") if t]
    if a.torch_worker:
        return torch_epochs_worker(a) if a.feature_cache_run else torch_worker(a)

    work = os.path.abspath(a.work or os.path.join(os.path.dirname(os.path.abspath(a.onnxtune)), "bench-finetune"))
    os.makedirs(work, exist_ok=True)
    if a.fc_report:
        j = json.load(open(a.fc_report))
        a.fc_samples, a.fc_epochs, a.sizes, a.threads, a.torch_epochs = (j["samples"], j["epochs"], [j["size"]],
                                                                       [j["threads"]], j["torch_epochs"])
        a.rounds = max(len(d["auto"]) for d in j["results"].values())
        return fc_report(a, j["results"])
    if a.feature_cache_run:
        return feature_cache_run(a, work)
    configs = []   # (model, size, scenario)
    for m in a.models:
        for s in ([VIT_SIZE] if m == "vit" else a.sizes):
            configs += [(m, s, sc) for sc in a.scenarios if not (m == "vit" and sc == "Bbn")]   # no BN
    data = {s: make_data(s, work) for s in sorted({c[1] for c in configs})}
    progs, base_progs = {}, {}
    for c in configs:
        if a.baseline:
            base_progs[c] = compile_prog(a, *c, work, onnxtune=a.baseline, suffix="-baseline")
        progs[c] = compile_prog(a, *c, work)
        name, (_, total, cc, cpu) = "-".join(map(str, c)), progs[c]
        print(f"# compiled {name}: {total:.1f} s (cc {cc:.1f} s; CPU {cpu:.1f} s)", flush=True)

    res = {}   # (model, size, scenario, threads) -> {"onnxtune": [...], "pytorch": [...], ...}
    loads = []
    for r in range(a.rounds):
        for c in configs:
            for t in a.threads:
                d = res.setdefault(c + (t,), {"onnxtune": [], "pytorch": [], "onnxtune_cpu": [], "pytorch_cpu": [],
                                             "onnxtune_rss": [], "pytorch_rss": [], "onnxtune_runs": [], "load": [],
                                             "baseline": [], "baseline_cpu": [], "baseline_rss": [],
                                             "baseline_runs": []})
                load = loadavg()
                order = ["onnxtune", "pytorch"] + (["baseline"] if a.baseline else [])
                order = order if r % 2 == 0 else order[::-1]
                for k in order:
                    if k in ("onnxtune", "baseline"):
                        s, cpu, rss, runs = onnxtune_step((progs if k == "onnxtune" else base_progs)[c][0],
                                                          data[c[1]], t)
                        d[k + "_runs"].append(runs)
                    else:
                        s, cpu, rss, d["pytorch_trainable"] = torch_step(a, c[0], c[1], c[2], t)
                    d[k].append(s)
                    d[k + "_cpu"].append(cpu)
                    d[k + "_rss"].append(rss)
                d["load"].append(load)
                loads.append(load)
                print(f"# round {r + 1} {c[0]} {c[1]} {c[2]} t{t} load {load:.2f}: onnxtune {d['onnxtune'][-1]:.3f} s "
                      f"(CPU {d['onnxtune_cpu'][-1]:.3f}) PyTorch {d['pytorch'][-1]:.3f} s "
                      f"(CPU {d['pytorch_cpu'][-1]:.3f})" +
                      (f" baseline {d['baseline'][-1]:.3f} s (CPU {d['baseline_cpu'][-1]:.3f})" if a.baseline else ""),
                      flush=True)
                report(a, progs, res, loads, work, r + 1, show=False)   # a cut-short run keeps its results
        report(a, progs, res, loads, work, r + 1)


# Issue 9's targets. A step ratio is judged on CPU time at 1 thread (the load disturbs it least) and on wall
# time at 2 threads (CPU time would count waiting threads); thread scaling on wall time, for the CNNs at 224.
TARGET_STEP, TARGET_RSS, TARGET_SCALING, TARGET_COMPILE = 0.7, 0.6, 1.8, 15.0
SCALING_MODELS = ("resnet18", "mobilenet_v2")


def ratios(d, k, base="pytorch"):
    return [x / y for x, y in zip(d[k], d[base + k[len("onnxtune"):]])]


def yes(ok):
    return "n/a (a negative step: noise)" if ok is None else "yes" if ok else "**no**"


def summarize(res):
    """Rows of the main table plus the thread-scaling rows, as dicts (also what finetune.json keeps)."""
    med = statistics.median
    rows, scaling = [], []
    for (m, s, sc, t), d in res.items():
        if not d["pytorch"] or not d["onnxtune"]:
            continue
        wall, cpu = ratios(d, "onnxtune"), ratios(d, "onnxtune_cpu")
        rss = max(d["onnxtune_rss"]) / max(d["pytorch_rss"])
        judged = med(cpu) if t == 1 else med(wall)
        if min(d["onnxtune"]) <= 0:   # a 3-epoch run faster than the 1-epoch one: the load, not a step
            judged = float("nan")
        rows.append({"model": m, "size": s, "scenario": sc, "threads": t, "onnxtune_s": med(d["onnxtune"]),
                     "pytorch_s": med(d["pytorch"]), "onnxtune_cpu_s": med(d["onnxtune_cpu"]),
                     "pytorch_cpu_s": med(d["pytorch_cpu"]), "wall_ratio": wall, "cpu_ratio": cpu,
                     "onnxtune_mib": max(d["onnxtune_rss"]), "pytorch_mib": max(d["pytorch_rss"]), "rss_ratio": rss,
                     "step_ratio_judged": judged, "step_target_met": judged <= TARGET_STEP if judged == judged else None,
                     "rss_target_met": rss <= TARGET_RSS, "pytorch_trainable": d.get("pytorch_trainable")})
    for (m, s, sc, t), d in res.items():
        two = res.get((m, s, sc, 2))
        if t != 1 or not two or not two["onnxtune"] or not two["pytorch"]:
            continue
        n = min(len(d["onnxtune"]), len(two["onnxtune"]), len(d["pytorch"]), len(two["pytorch"]))
        ours = [d["onnxtune"][i] / two["onnxtune"][i] for i in range(n)]       # same round: adjacent runs
        theirs = [d["pytorch"][i] / two["pytorch"][i] for i in range(n)]
        judged = m in SCALING_MODELS and s == 224 and min(two["onnxtune"][:n]) > 0
        scaling.append({"model": m, "size": s, "scenario": sc, "onnxtune_speedup": ours, "pytorch_speedup": theirs,
                        "target_met": (med(ours) >= TARGET_SCALING) if judged else None})
    return rows, scaling


def report(a, progs, res, loads, work, rounds, show=True):
    """Write WORK/finetune.json from the rounds measured so far and (show) print the tables."""
    cpu_name = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    env = {k: os.environ.get(k, "(unset)") for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_WAIT_POLICY")}
    out = [f"\n{time.strftime('%Y-%m-%d %H:%M %Z')}, {cpu_name}, {os.cpu_count()} CPUs; 1-min load per measurement "
           f"{min(loads):.2f}–{max(loads):.2f} (median {statistics.median(loads):.2f}); {env}",
           f"seconds per step (wall), median of {rounds} rounds; ratio onnxtune/PyTorch median (min–max) over "
           "rounds; CPU ratio: the same with CPU seconds (user + system), which a loaded machine disturbs less but "
           "which counts spinning threads (meaningful at 1 thread); peak RSS MiB and their ratio; target met: "
           f"step <= {TARGET_STEP}x PyTorch (CPU ratio at 1 thread, wall ratio at 2), peak RSS <= {TARGET_RSS}x\n"]
    head = ["model", "input", "scenario", "thr", "onnxtune s", "PyTorch s", "onnxtune/PyTorch",
            "CPU ratio", "onnxtune MiB", "PyTorch MiB", "RSS ratio", "target met: step / RSS"]
    if a.baseline:
        head += ["baseline s", "baseline/PyTorch", "baseline CPU ratio"]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows, scaling = summarize(res)
    table = []
    for r in rows:
        d = res[(r["model"], r["size"], r["scenario"], r["threads"])]
        row = [r["model"], str(r["size"]), r["scenario"], str(r["threads"]), f"{r['onnxtune_s']:.3f}",
               f"{r['pytorch_s']:.3f}", spread(r["wall_ratio"]), spread(r["cpu_ratio"]), f"{r['onnxtune_mib']:.0f}",
               f"{r['pytorch_mib']:.0f}", f"{r['rss_ratio']:.2f}",
               (f"{yes(r['step_target_met'])} ({r['step_ratio_judged']:.2f})" if r["step_target_met"] is not None
                else yes(None)) + f" / {yes(r['rss_target_met'])}"]
        if a.baseline and d["baseline"]:
            row += [f"{statistics.median(d['baseline']):.3f}", spread(ratios(d, "baseline")),
                    spread(ratios(d, "baseline_cpu"))]
        table.append(row)
        out.append("| " + " | ".join(row) + " |")
    if scaling:
        out += ["", f"thread scaling: wall s/step at 1 thread / at 2 threads, per round (adjacent runs), median "
                f"(min–max); target >= {TARGET_SCALING}x for {', '.join(SCALING_MODELS)} at 224", "",
                "| model | input | scenario | onnxtune 1 -> 2 threads | PyTorch 1 -> 2 threads | target met |",
                "|---|---|---|---|---|---|"]
        for r in scaling:
            met = "-" if r["target_met"] is None else yes(r["target_met"])
            out.append(f"| {r['model']} | {r['size']} | {r['scenario']} | {spread(r['onnxtune_speedup'])}x | "
                       f"{spread(r['pytorch_speedup'])}x | {met} |")
    out += ["", f"compile (`onnxtune compile`, wall: codegen + cc; target: resnet18 under {TARGET_COMPILE:.0f} s) "
            "and trained values (onnxtune compile's count / PyTorch's requires_grad numel)", "",
            "| program | compile s | codegen s | cc s | CPU s | target met | trains onnxtune / PyTorch |",
            "|---|---|---|---|---|---|---|"]
    compile_rows = []
    for c, (prog, total, cc, cpu) in progs.items():
        theirs = next((d.get("pytorch_trainable") for k, d in res.items() if k[:3] == c and d.get("pytorch_trainable")),
                      None)
        ours = TRAINS.get(prog)
        same = "" if ours is None or theirs is None else (" (same)" if ours == theirs else " (**differ**)")
        met = yes(total < TARGET_COMPILE) if c[0] == "resnet18" else "-"
        compile_rows.append({"program": "-".join(map(str, c)), "s": total, "cc_s": cc, "cpu_s": cpu,
                             "onnxtune_trains": ours, "pytorch_trains": theirs})
        out.append(f"| {'-'.join(map(str, c))} | {total:.1f} | {total - cc:.1f} | {cc:.1f} | {cpu:.1f} | {met} | "
                   f"{ours} / {theirs}{same} |")
    path = os.path.join(work, "finetune.json")
    with open(path, "w") as f:
        json.dump({"date": time.strftime("%Y-%m-%d %H:%M %Z"), "cpu": cpu_name, "env": env, "rounds": rounds,
                   "batch": BATCH, "samples": SAMPLES, "loads": loads,
                   "targets": {"step": TARGET_STEP, "rss": TARGET_RSS, "scaling": TARGET_SCALING,
                               "compile_s": TARGET_COMPILE},
                   "compile": [list(c) + [total, cc, cpu] for c, (_, total, cc, cpu) in progs.items()],
                   "compile_rows": compile_rows, "rows": rows, "scaling": scaling,
                   "results": [list(k) + [d] for k, d in res.items()], "table": [head] + table}, f, indent=1)
    if show:
        print("\n".join(out + ["", f"wrote {path}"]), flush=True)

if __name__ == "__main__":
    main()
