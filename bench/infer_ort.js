// infer_ort.js - ONNX Runtime's side of bench/infer.py: the median seconds of one forward pass (session.run)
// of an ONNX model at a fixed batch, CPU execution provider, in this process. It checks no results.
// Float inputs get a fixed pseudo-random fill, int64 inputs the ids i % 7; symbolic dims other than the batch
// are refused. Needs `ONNXRUNTIME_NODE_INSTALL=skip npm install` in bench/ (package.json).
//
// Run: node bench/infer_ort.js MODEL.onnx BATCH THREADS [REPEAT] [WARMUP]
// Prints: median_s=... min_s=... max_s=... repeat=N
'use strict';
const ort = require('onnxruntime-node');

async function main() {
    const [path, batchArg, threadsArg, repeatArg, warmupArg] = process.argv.slice(2);
    if (!path || !batchArg || !threadsArg) {
        console.error('usage: node bench/infer_ort.js MODEL.onnx BATCH THREADS [REPEAT] [WARMUP]');
        process.exit(2);
    }
    const batch = Number(batchArg), threads = Number(threadsArg);
    const repeat = Number(repeatArg || 20), warmup = Number(warmupArg || 3);
    const session = await ort.InferenceSession.create(path, {
        intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
        graphOptimizationLevel: 'all',
    });
    const feeds = {};
    for (const name of session.inputNames) {
        const meta = session.inputMetadata.find((m) => m.name === name);
        const dims = meta.shape.map((d, i) => {
            if (typeof d === 'number' && d >= 0) return d;
            if (i === 0) return batch;
            console.error(`infer_ort.js: input ${name} has symbolic dim ${i} (${d}) other than the batch`);
            process.exit(1);
        });
        const n = dims.reduce((a, b) => a * b, 1);
        if (meta.type === 'float32') {
            const data = new Float32Array(n);
            for (let i = 0; i < n; i++) data[i] = ((i * 2654435761) % 2000) / 1000 - 1;
            feeds[name] = new ort.Tensor('float32', data, dims);
        } else if (meta.type === 'int64') {
            const data = new BigInt64Array(n); // token ids i % 7, as infer_harness.c
            for (let i = 0; i < n; i++) data[i] = BigInt(i % 7);
            feeds[name] = new ort.Tensor('int64', data, dims);
        } else {
            console.error(`infer_ort.js: input ${name} has type ${meta.type} (want float32 or int64)`);
            process.exit(1);
        }
    }
    for (let i = 0; i < warmup; i++) await session.run(feeds);
    const times = [];
    // BENCH_CPU_TIME=1: the process's CPU time (user + system; 1-thread runs on a loaded machine)
    const cpuTime = (process.env.BENCH_CPU_TIME || '0') !== '0';
    const clock = () => {
        if (!cpuTime) return Number(process.hrtime.bigint()) * 1e-9;
        const u = process.cpuUsage();
        return (u.user + u.system) * 1e-6;
    };
    for (let i = 0; i < repeat; i++) {
        const t0 = clock();
        await session.run(feeds);
        times.push(clock() - t0);
    }
    times.sort((a, b) => a - b);
    const f = (x) => x.toFixed(6);
    console.log(`median_s=${f(times[repeat >> 1])} min_s=${f(times[0])} max_s=${f(times[repeat - 1])} repeat=${repeat}`);
}

main().catch((e) => { console.error(`infer_ort.js: ${e.message || e}`); process.exit(1); });
