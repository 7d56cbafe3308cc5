// ort_stream.js - ONNX Runtime's side of tests/test_stream_ort.sh: runs a model whose state is an explicit
// input and output chunk by chunk along axis 0 (as `onnxtune run --state OUT=IN --chunk N` does), feeding
// each run's OUT into the next run's IN, gathers the chunked outputs along axis 0, and compares every
// output with the given .npy files (max |ort - file| <= TOL).
//
// Run: node tests/ort_stream.js MODEL.onnx CHUNK TOL ARG...
//   NAME=FILE.npy     an input (those whose leading dim is the sequence's length are cut into chunks)
//   state:OUT=IN      output OUT of a run is input IN of the next
//   check:OUT=FILE.npy  compare output OUT (gathered over all chunks, or the last chunk's) with FILE
// Prints one line per check; exits 1 when anything differs, 2 on bad input.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

function fail(code, msg) {
    console.error(`ort_stream.js: ${msg}`);
    process.exit(code);
}

const TYPES = { '<f4': ['float32', Float32Array, 4], '<i8': ['int64', BigInt64Array, 8], '|b1': ['bool', Uint8Array, 1] };

function readNpy(path) {
    const buf = fs.readFileSync(path);
    if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') fail(2, `${path}: not an .npy`);
    const hlen = buf[6] === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8), start = buf[6] === 1 ? 10 : 12;
    const header = buf.toString('latin1', start, start + hlen);
    const descr = /'descr':\s*'([^']+)'/.exec(header), shape = /'shape':\s*\(([^)]*)\)/.exec(header);
    if (!descr || !shape || !TYPES[descr[1]] || /'fortran_order':\s*True/.test(header))
        fail(2, `${path}: unsupported header ${header}`);
    const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
    const [type, Arr, size] = TYPES[descr[1]], n = dims.reduce((a, b) => a * b, 1);
    const b = Buffer.alloc(size * n);
    buf.copy(b, 0, start + hlen, start + hlen + size * n);
    return { type, dims, data: new Arr(b.buffer, 0, n) };
}

async function main() {
    const [model, chunkArg, tolArg, ...args] = process.argv.slice(2);
    const chunk = Number(chunkArg), tol = Number(tolArg);
    if (!model || !(chunk > 0) || !(tol >= 0)) fail(2, 'usage: ort_stream.js MODEL CHUNK TOL ARG...');
    const inputs = {}, states = {}, checks = {};
    for (const a of args) {
        const m = /^(state:|check:)?([^=]+)=(.+)$/.exec(a);
        if (!m) fail(2, `bad argument ${a}`);
        if (m[1] === 'state:') states[m[2]] = m[3];
        else if (m[1] === 'check:') checks[m[2]] = readNpy(m[3]);
        else inputs[m[2]] = readNpy(m[3]);
    }
    const stateIns = new Set(Object.values(states));
    let T = -1;
    for (const [name, x] of Object.entries(inputs))
        if (!stateIns.has(name) && x.dims.length > 0) T = Math.max(T, x.dims[0]);
    if (T <= 0 || T % chunk) fail(2, `the sequence's ${T} steps are not whole chunks of ${chunk}`);
    const session = await ort.InferenceSession.create(model);
    const feed = {};
    for (const [name, x] of Object.entries(inputs)) feed[name] = new ort.Tensor(x.type, x.data, x.dims);
    const gathered = {};
    for (let t0 = 0; t0 < T; t0 += chunk) {
        for (const [name, x] of Object.entries(inputs)) {
            if (stateIns.has(name) || x.dims.length === 0 || x.dims[0] !== T) continue;
            const row = x.data.length / T;
            feed[name] = new ort.Tensor(x.type, x.data.slice(t0 * row, (t0 + chunk) * row), [chunk, ...x.dims.slice(1)]);
        }
        const out = await session.run(feed);
        for (const [name, y] of Object.entries(out)) {
            const g = gathered[name];
            if (y.dims.length > 0 && y.dims[0] === chunk && !(name in states)) {
                gathered[name] = g ? { dims: [g.dims[0] + chunk, ...y.dims.slice(1)], data: [...g.data, ...y.data] }
                                   : { dims: [...y.dims], data: [...y.data] };
            } else {
                gathered[name] = { dims: [...y.dims], data: [...y.data] };
            }
        }
        for (const [o, i] of Object.entries(states)) {
            if (!out[o]) fail(2, `state output ${o} is not an output of the model`);
            feed[i] = out[o];
        }
    }
    let bad = false;
    for (const [name, want] of Object.entries(checks)) {
        const got = gathered[name];
        if (!got) fail(2, `no output ${name}`);
        let err = got.data.length === want.data.length ? 0 : Infinity;
        for (let k = 0; err !== Infinity && k < want.data.length; k++)
            err = Math.max(err, Math.abs(Number(got.data[k]) - Number(want.data[k])));
        const ok = err <= tol && got.dims.join(',') === want.dims.join(',');
        console.log(`${ok ? 'ok' : 'DIFFERS'} ${name} [${got.dims}] max abs error ${err} (tol ${tol})`);
        bad = bad || !ok;
    }
    process.exit(bad ? 1 : 0);
}

main().catch((e) => fail(2, String(e && e.stack || e)));
