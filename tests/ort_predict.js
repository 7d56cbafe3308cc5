// ort_predict.js - ONNX Runtime's side of tests/test_train_ort.sh: runs an exported fine-tuned model on the x of
// an .npz (np.savez or savez_compressed) and checks it against the trainer's own results: the logits of
// `PROG predict --output` (per row, relative to the row's largest magnitude, within TOL), the argmax of
// `PROG predict --output-labels` (all equal), and the accuracy of `PROG eval --metrics` against the .npz's y.
// It reads only what it needs of ZIP and NPY (little-endian float32 / int64, C order).
//
// Run: node tests/ort_predict.js MODEL.onnx DATA.npz LOGITS.npy LABELS.npy EVAL.jsonl [TOL]
// (DATA may also be X.npy,Y.npy.)
// Prints one line; exits 1 when anything differs, 2 on bad input.
'use strict';
const fs = require('fs');
const zlib = require('zlib');
const ort = require('onnxruntime-node');

function fail(code, msg) {
    console.error(`ort_predict.js: ${msg}`);
    process.exit(code);
}

// An .npy image: { dtype: '<f4' | '<i8', shape, data: Float32Array | BigInt64Array }.
function parseNpy(buf, name) {
    if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') fail(2, `${name}: not an .npy`);
    const major = buf[6];
    const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
    const start = major === 1 ? 10 : 12;
    const header = buf.toString('latin1', start, start + hlen);
    const descr = /'descr':\s*'([^']+)'/.exec(header), shape = /'shape':\s*\(([^)]*)\)/.exec(header);
    if (!descr || !shape || /'fortran_order':\s*True/.test(header)) fail(2, `${name}: unsupported header ${header}`);
    const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
    const n = dims.reduce((a, b) => a * b, 1);
    const body = buf.subarray(start + hlen);
    const copy = (bytes) => { const b = Buffer.alloc(bytes); body.copy(b, 0, 0, bytes); return b.buffer; };
    if (descr[1] === '<f4') return { dtype: descr[1], shape: dims, data: new Float32Array(copy(4 * n)) };
    if (descr[1] === '<i8') return { dtype: descr[1], shape: dims, data: new BigInt64Array(copy(8 * n)) };
    fail(2, `${name}: dtype ${descr[1]} is not float32 or int64`);
}

// The members of a ZIP archive by name (central directory; stored or deflated).
function readNpz(path) {
    const z = fs.readFileSync(path);
    let eocd = -1;
    for (let i = z.length - 22; i >= 0 && i >= z.length - 65557; i--)
        if (z.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
    if (eocd < 0) fail(2, `${path}: not a ZIP archive`);
    const count = z.readUInt16LE(eocd + 10);
    let at = z.readUInt32LE(eocd + 16);
    const out = {};
    for (let k = 0; k < count; k++) {
        if (z.readUInt32LE(at) !== 0x02014b50) fail(2, `${path}: bad central directory`);
        const method = z.readUInt16LE(at + 10), csize = z.readUInt32LE(at + 20);
        const nlen = z.readUInt16LE(at + 28), xlen = z.readUInt16LE(at + 30), clen = z.readUInt16LE(at + 32);
        const local = z.readUInt32LE(at + 42);
        const name = z.toString('utf8', at + 46, at + 46 + nlen);
        const dataAt = local + 30 + z.readUInt16LE(local + 26) + z.readUInt16LE(local + 28);
        const raw = z.subarray(dataAt, dataAt + csize);
        const bytes = method === 0 ? raw : method === 8 ? zlib.inflateRawSync(raw) : fail(2, `${name}: method ${method}`);
        out[name.replace(/\.npy$/, '')] = parseNpy(bytes, `${path}:${name}`);
        at += 46 + nlen + xlen + clen;
    }
    return out;
}

async function main() {
    const [model, npz, logitsPath, labelsPath, evalPath, tolArg] = process.argv.slice(2);
    if (!evalPath) fail(2, 'usage: node tests/ort_predict.js MODEL.onnx DATA.npz LOGITS.npy LABELS.npy EVAL.jsonl [TOL]');
    const tol = Number(tolArg || 1e-4);
    const files = npz.split(',');   // X.npy,Y.npy instead of an .npz
    const npy = (f) => parseNpy(fs.readFileSync(f), f);
    const data = files.length === 2 ? { x: npy(files[0]), y: npy(files[1]) } : readNpz(npz);
    if (!data.x || !data.y) fail(2, `${npz}: needs x and y`);
    const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data.x.data, data.x.shape) };
    const result = await session.run(feeds);
    const got = result[session.outputNames[0]];
    const ref = parseNpy(fs.readFileSync(logitsPath), logitsPath), labels = parseNpy(fs.readFileSync(labelsPath), labelsPath);
    const n = data.x.shape[0], k = got.dims[1];
    if (got.dims.length !== 2 || got.dims[0] !== n || ref.shape[0] !== n || ref.shape[1] !== k || labels.shape[0] !== n)
        fail(1, `shapes: ORT [${got.dims}], predict [${ref.shape}], labels [${labels.shape}], ${n} samples`);
    let worst = 0, agree = 0, correct = 0;
    for (let i = 0; i < n; i++) {
        let scale = 1e-6, best = 0;
        for (let c = 0; c < k; c++) {
            scale = Math.max(scale, Math.abs(ref.data[i * k + c]));
            if (got.data[i * k + c] > got.data[i * k + best]) best = c;
        }
        for (let c = 0; c < k; c++)
            worst = Math.max(worst, Math.abs(got.data[i * k + c] - ref.data[i * k + c]) / scale);
        agree += BigInt(best) === labels.data[i];
        correct += BigInt(best) === data.y.data[i];
    }
    const line = fs.readFileSync(evalPath, 'utf8').split('\n').filter((l) => l.includes('"split":"eval"')).pop();
    const evalAcc = line ? JSON.parse(line).accuracy : NaN;
    const acc = correct / n;
    console.log(`ort: ${n} samples, ${k} classes: logits max rel err ${worst.toExponential(2)} (tol ${tol}), ` +
                `argmax = predict's in ${agree}/${n}, accuracy ${acc.toFixed(4)} (PROG eval ${evalAcc})`);
    if (!(worst <= tol) || agree !== n || !(Math.abs(acc - evalAcc) < 1e-9)) process.exit(1);
}

main().catch((e) => fail(1, e.stack || String(e)));
