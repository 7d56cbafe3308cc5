"""make_small.py - the small example models committed under models/<name>/, with PyTorch references.

Each model is randomly initialised with a fixed seed, exported with a symbolic batch axis "N",
and saved with inputs and PyTorch's eval-mode outputs at batch 2 (batch 4 for mlp;
input_K.npy/output_K.npy) and batch 3 (*_b3.npy); bert, gpt2, distilbert and vit, the transformer
families whose exports onnxtune must train, also get named_parameters.txt. It trains nothing: the trained digits
backbone is make_digits.py's.

Run: /usr/bin/python3 models/make_small.py [--only mlp,cnn,...]
"""
import argparse
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_BYTES = 300 * 1024


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):  # x: [N,16] -> [N,10]
        return self.fc2(self.relu(self.fc1(x)))


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(16, 10)

    def forward(self, x):  # x: [N,1,8,8] -> [N,10]
        return self.classifier(self.features(x))


class LoraCNN(nn.Module):
    """A kxk conv (3x3, stride 2) and a 1x1 conv: the two Conv shapes LoRA adapts (tests/ref/make_train_ref.py)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(8, 16, 1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(16, 10)

    def forward(self, x):  # x: [N,3,8,8] -> [N,10]
        return self.classifier(self.features(x))


class TextTransformer(nn.Module):
    """Token ids -> embedding -> TransformerEncoder -> mean over the sequence -> logits."""

    def __init__(self, vocab=50, d_model=16, nhead=2, ff=32, layers=2, classes=4):
        super().__init__()
        self.embedding = nn.Embedding(vocab, d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=ff, dropout=0.0,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)
        self.classifier = nn.Linear(d_model, classes)

    def forward(self, tokens):  # tokens: [N,T] int64 -> [N,classes]
        return self.classifier(self.encoder(self.embedding(tokens)).mean(dim=1))


class RNNClassifier(nn.Module):
    """Token ids -> embedding -> LSTM/GRU -> last hidden state -> logits."""

    def __init__(self, cell, vocab=30, emb=8, hidden=12, classes=3):
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb)
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell](emb, hidden, batch_first=True)
        self.classifier = nn.Linear(hidden, classes)

    def forward(self, tokens):  # tokens: [N,T] int64 -> [N,classes]
        _, h = self.rnn(self.embedding(tokens))
        if isinstance(h, tuple):  # LSTM returns (h_n, c_n)
            h = h[0]
        return self.classifier(h[-1])  # h: [layers,N,hidden]


class BertSelfAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads, self.dh = heads, d // heads
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)

    def split(self, x):  # [N,T,D] -> [N,H,T,Dh]
        n, t, _ = x.shape
        return x.view(n, t, self.heads, self.dh).transpose(1, 2)

    def forward(self, x, mask):  # x: [N,T,D], mask: [N,1,1,T] additive
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.dh) + mask
        ctx = torch.softmax(scores, dim=-1) @ v
        n, _, t, _ = ctx.shape
        return ctx.transpose(1, 2).reshape(n, t, self.heads * self.dh)


class BertDenseNorm(nn.Module):  # BertSelfOutput / BertOutput: dense, residual, LayerNorm
    def __init__(self, d_in, d):
        super().__init__()
        self.dense = nn.Linear(d_in, d)
        self.LayerNorm = nn.LayerNorm(d, eps=1e-12)

    def forward(self, h, residual):
        return self.LayerNorm(self.dense(h) + residual)


class BertAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.self = BertSelfAttention(d, heads)
        self.output = BertDenseNorm(d, d)

    def forward(self, x, mask):
        return self.output(self.self(x, mask), x)


class BertIntermediate(nn.Module):
    def __init__(self, d, ff):
        super().__init__()
        self.dense = nn.Linear(d, ff)

    def forward(self, x):
        return F.gelu(self.dense(x))  # exact GELU: Erf in the export


class BertLayer(nn.Module):
    def __init__(self, d, heads, ff):
        super().__init__()
        self.attention = BertAttention(d, heads)
        self.intermediate = BertIntermediate(d, ff)
        self.output = BertDenseNorm(ff, d)

    def forward(self, x, mask):
        a = self.attention(x, mask)
        return self.output(self.intermediate(a), a)


class BertEncoder(nn.Module):
    def __init__(self, d, heads, ff, layers):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(d, heads, ff) for _ in range(layers)])

    def forward(self, x, mask):
        for layer in self.layer:
            x = layer(x, mask)
        return x


class BertEmbeddings(nn.Module):
    def __init__(self, vocab, d, max_len):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, d, padding_idx=0)
        self.position_embeddings = nn.Embedding(max_len, d)
        self.LayerNorm = nn.LayerNorm(d, eps=1e-12)
        self.register_buffer("position_ids", torch.arange(max_len)[None])

    def forward(self, ids):  # [N,T] -> [N,T,D]
        pos = self.position_ids[:, :ids.shape[1]]
        return self.LayerNorm(self.word_embeddings(ids) + self.position_embeddings(pos))


class TinyBert(nn.Module):
    """A BERT-style text classifier with HuggingFace's module names (embeddings.*, encoder.layer.K.
    attention.self.query, ...): token 0 is padding, masked out of attention by an additive mask
    computed in the graph from input_ids == 0; the classifier reads the first token."""
    list_parameters = True  # write named_parameters.txt next to the export

    def __init__(self, vocab=40, d=16, heads=2, ff=32, layers=2, max_len=8, classes=4):
        super().__init__()
        self.embeddings = BertEmbeddings(vocab, d, max_len)
        self.encoder = BertEncoder(d, heads, ff, layers)
        self.classifier = nn.Linear(d, classes)

    def forward(self, input_ids):  # input_ids: [N,T] int64 -> [N,classes]
        pad = (input_ids == 0)[:, None, None, :]
        mask = torch.where(pad, torch.tensor(-10000.0), torch.tensor(0.0))
        h = self.encoder(self.embeddings(input_ids), mask)
        return self.classifier(h[:, 0])


def pool_hidden(h, mask, kind):
    """onnxtune's --pool on hidden states h [N,T,D] with the attention mask [N,T] (1 = token):
    cls = token 0; mean = sum(h * m) / max(sum(m), 1e-9) (sentence-transformers); last = the last
    marked token, sum(m) - 1 (right padding, as GPT2ForSequenceClassification)."""
    if kind == "cls":
        return h[:, 0]
    m = (mask != 0).to(h.dtype)
    if kind == "mean":
        return (h * m[:, :, None]).sum(1) / m.sum(1, keepdim=True).clamp(min=1e-9)
    if kind == "last":
        idx = m.sum(1).long() - 1
        return h[torch.arange(h.shape[0]), idx]
    raise ValueError(kind)


class TinyBertTokens(nn.Module):
    """A BERT-style encoder with HuggingFace's names and inputs (input_ids, attention_mask,
    token_type_ids): word + position + token-type embeddings, LayerNorm, an additive mask
    (1 - attention_mask) * -10000 as BertModel's get_extended_attention_mask, and a token-level
    classifier [N,T,vocab] (a masked-LM-like head). pool (None when exported): fine-tuning runs
    replace classifier and pool the hidden states first, as onnxtune's --pool does."""
    list_parameters = True

    def __init__(self, vocab=40, d=16, heads=2, ff=32, layers=2, max_len=8, types=2):
        super().__init__()
        self.embeddings = BertEmbeddings(vocab, d, max_len)
        self.embeddings.token_type_embeddings = nn.Embedding(types, d)
        self.encoder = BertEncoder(d, heads, ff, layers)
        self.classifier = nn.Linear(d, vocab)
        self.pool = None

    def forward(self, input_ids, attention_mask, token_type_ids):
        e = self.embeddings
        pos = e.position_ids[:, :input_ids.shape[1]]
        x = e.LayerNorm(e.word_embeddings(input_ids) + e.position_embeddings(pos)
                        + e.token_type_embeddings(token_type_ids))
        ext = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
        h = self.encoder(x, ext)
        if self.pool is not None:
            h = pool_hidden(h, attention_mask, self.pool)
        return self.classifier(h)


def bert_pair_inputs(seq, vocab, seed):
    """(input_ids, attention_mask, token_type_ids) of sentence pairs with trailing padding: ids in
    1..vocab-1 (0 at padding), mask 1 on tokens, token types 0 then 1 from a random split point."""
    def make(batch):
        g = torch.Generator().manual_seed(seed * 1000 + batch)
        ids = torch.randint(1, vocab, (batch, seq), generator=g, dtype=torch.int64)
        keep = torch.randint(2, seq + 1, (batch,), generator=g)
        mask = (torch.arange(seq)[None] < keep[:, None]).to(torch.int64)
        split = (torch.rand(batch, generator=g) * keep).long()
        types = ((torch.arange(seq)[None] >= split[:, None]).to(torch.int64) * mask)
        return ids * mask, mask, types
    return make


class GPT2Block(nn.Module):
    """GPT-2's block: pre-LayerNorm, fused qkv Linear split in three, causal mask applied with
    torch.where, tanh-approximated GELU written out as GPT-2's gelu_new."""

    def __init__(self, d, heads):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.Module()
        self.attn.c_attn, self.attn.c_proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Module()
        self.mlp.c_fc, self.mlp.c_proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.heads = heads

    def forward(self, x, causal):  # x [N,T,D], causal [T,T] bool
        n, t, d = x.shape
        q, k, v = self.attn.c_attn(self.ln_1(x)).split(d, dim=2)
        q, k, v = (a.view(n, t, self.heads, d // self.heads).transpose(1, 2) for a in (q, k, v))
        w = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)
        w = torch.where(causal, w, torch.tensor(-1e4))
        a = (torch.softmax(w, dim=-1) @ v).transpose(1, 2).reshape(n, t, d)
        x = x + self.attn.c_proj(a)
        h = self.mlp.c_fc(self.ln_2(x))
        h = 0.5 * h * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (h + 0.044715 * torch.pow(h, 3.0))))
        return x + self.mlp.c_proj(h)


class TinyGPT2(nn.Module):
    """GPT-2-style sequence classifier (GPT2ForSequenceClassification's shape): token and position
    embeddings (positions from torch.arange), 2 blocks, final LayerNorm, score = Linear without bias
    on the last token. The causal mask is one buffer of the model (HuggingFace keeps one per block,
    which the exporter merges: equal values)."""
    list_parameters = True

    def __init__(self, vocab=40, d=16, heads=2, layers=2, t_max=8, classes=4):
        super().__init__()
        self.transformer = nn.Module()
        self.transformer.wte, self.transformer.wpe = nn.Embedding(vocab, d), nn.Embedding(t_max, d)
        self.transformer.h = nn.ModuleList([GPT2Block(d, heads) for _ in range(layers)])
        self.transformer.ln_f = nn.LayerNorm(d)
        self.score = nn.Linear(d, classes, bias=False)
        self.register_buffer("causal", torch.tril(torch.ones(t_max, t_max, dtype=torch.bool)))

    def forward(self, input_ids):  # [N,T] int64 -> [N,classes]
        pos = torch.arange(input_ids.shape[1], dtype=torch.long)[None]
        x = self.transformer.wte(input_ids) + self.transformer.wpe(pos)
        t = input_ids.shape[1]
        for block in self.transformer.h:
            x = block(x, self.causal[:t, :t])
        return self.score(self.transformer.ln_f(x)[:, -1])


class DistilBertLayer(nn.Module):
    def __init__(self, d, heads, ff):
        super().__init__()
        self.attention = nn.Module()
        for name in ("q_lin", "k_lin", "v_lin", "out_lin"):
            setattr(self.attention, name, nn.Linear(d, d))
        self.sa_layer_norm = nn.LayerNorm(d, eps=1e-12)
        self.ffn = nn.Module()
        self.ffn.lin1, self.ffn.lin2 = nn.Linear(d, ff), nn.Linear(ff, d)
        self.output_layer_norm = nn.LayerNorm(d, eps=1e-12)
        self.heads = heads

    def forward(self, x, mask):  # x [N,T,D], mask [N,T] bool (True: a token)
        n, t, d = x.shape
        dh = d // self.heads
        att = self.attention

        def shape(a):
            return a.view(n, -1, self.heads, dh).transpose(1, 2)
        q = shape(att.q_lin(x)) / math.sqrt(dh)
        scores = q @ shape(att.k_lin(x)).transpose(2, 3)
        masked = (mask == 0).view(n, 1, 1, t).expand_as(scores)
        scores = scores.masked_fill(masked, torch.tensor(-1e4))
        ctx = (torch.softmax(scores, dim=-1) @ shape(att.v_lin(x))).transpose(1, 2).reshape(n, t, d)
        x = self.sa_layer_norm(att.out_lin(ctx) + x)
        return self.output_layer_norm(self.ffn.lin2(F.gelu(self.ffn.lin1(x))) + x)


class TinyDistilBert(nn.Module):
    """DistilBERT-style classifier (DistilBertForSequenceClassification's names): the mask is
    input_ids != 0, applied with masked_fill (Equal/Not/Expand/Where); pre_classifier + ReLU +
    classifier on token 0."""
    list_parameters = True

    def __init__(self, vocab=40, d=16, heads=2, ff=32, layers=2, t_max=8, classes=4):
        super().__init__()
        self.distilbert = nn.Module()
        emb = self.distilbert.embeddings = nn.Module()
        emb.word_embeddings, emb.position_embeddings = nn.Embedding(vocab, d), nn.Embedding(t_max, d)
        emb.LayerNorm = nn.LayerNorm(d, eps=1e-12)
        self.distilbert.transformer = nn.Module()
        self.distilbert.transformer.layer = nn.ModuleList(
            [DistilBertLayer(d, heads, ff) for _ in range(layers)])
        self.pre_classifier, self.classifier = nn.Linear(d, d), nn.Linear(d, classes)

    def forward(self, input_ids):  # [N,T] int64 -> [N,classes]
        emb = self.distilbert.embeddings
        pos = torch.arange(input_ids.shape[1], dtype=torch.long)[None]
        x = emb.LayerNorm(emb.word_embeddings(input_ids) + emb.position_embeddings(pos))
        mask = input_ids != 0
        for layer in self.distilbert.transformer.layer:
            x = layer(x, mask)
        return self.classifier(torch.relu(self.pre_classifier(x[:, 0])))


def tiny_vit():
    """torchvision's VisionTransformer, tiny: 16x16 images in 4x4 patches, 2 layers (d 16, 2 heads,
    mlp 32): Conv patch embedding, class token (Concat), position embedding, nn.MultiheadAttention
    (in_proj_weight renamed by the exporter), exact GELU."""
    import torchvision
    m = torchvision.models.VisionTransformer(image_size=16, patch_size=4, num_layers=2, num_heads=2,
                                             hidden_dim=16, mlp_dim=32, num_classes=4)
    m.list_parameters = True
    return m


def float_inputs(shape, seed, scale=1.0, shift=0.0):
    def make(batch):
        g = torch.Generator().manual_seed(seed * 1000 + batch)
        return (torch.randn((batch,) + tuple(shape), generator=g) * scale + shift,)
    return make


def token_inputs(seq, vocab, seed):
    def make(batch):
        g = torch.Generator().manual_seed(seed * 1000 + batch)
        return (torch.randint(0, vocab, (batch, seq), generator=g, dtype=torch.int64),)
    return make


def build_mlp():
    common.set_seed(1)
    return MLP(), float_inputs((16,), 1), ["x"], ["logits"], [13], (4, 3)


def build_cnn():
    common.set_seed(2)
    m = SmallCNN()
    common.make_params_distinct(m)
    # Non-trivial BN affine parameters and running stats, so the BN node actually matters.
    with torch.no_grad():
        for bn in (m.features[1], m.features[5]):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.normal_(0.0, 0.2)
    calib = float_inputs((1, 8, 8), 99, scale=2.0, shift=0.5)
    common.calibrate_batchnorm(m, lambda: calib(8)[0])
    return m, float_inputs((1, 8, 8), 2, scale=2.0, shift=0.5), ["image"], ["logits"], [13], (2, 3)


def build_lora_cnn():
    common.set_seed(10)
    return LoraCNN(), float_inputs((3, 8, 8), 10), ["image"], ["logits"], [13], (2, 3)


def build_transformer():
    common.set_seed(3)
    return TextTransformer(), token_inputs(7, 50, 3), ["tokens"], ["logits"], [17, 13], (2, 3)


def padded_token_inputs(seq, vocab, seed):
    """Token ids in 1..vocab-1 with a random number (0..seq-2) of trailing padding zeros."""
    def make(batch):
        g = torch.Generator().manual_seed(seed * 1000 + batch)
        ids = torch.randint(1, vocab, (batch, seq), generator=g, dtype=torch.int64)
        keep = torch.randint(2, seq + 1, (batch,), generator=g)
        return (ids * (torch.arange(seq)[None] < keep[:, None]),)
    return make


def build_bert():
    common.set_seed(6)
    return TinyBert(), padded_token_inputs(8, 40, 6), ["input_ids"], ["logits"], [17, 13], (2, 3)


def build_bert_tokens():
    common.set_seed(10)
    return (TinyBertTokens(), bert_pair_inputs(8, 40, 10),
            ["input_ids", "attention_mask", "token_type_ids"], ["logits"], [17], (2, 3))


def build_gpt2():
    common.set_seed(7)
    return TinyGPT2(), token_inputs(8, 40, 7), ["input_ids"], ["logits"], [17, 13], (2, 3)


def build_distilbert():
    common.set_seed(8)
    return (TinyDistilBert(), padded_token_inputs(8, 40, 8), ["input_ids"], ["logits"], [17, 13],
            (2, 3))


def build_vit():
    common.set_seed(9)
    return tiny_vit(), float_inputs((3, 16, 16), 9), ["image"], ["logits"], [17, 13], (2, 3)


def build_rnn(cell, seed):
    common.set_seed(seed)
    return RNNClassifier(cell), token_inputs(5, 30, seed), ["tokens"], ["logits"], [13], (2, 3)


MODELS = {
    "mlp": build_mlp,
    "cnn": build_cnn,
    "transformer": build_transformer,
    "lstm": lambda: build_rnn("lstm", 4),
    "gru": lambda: build_rnn("gru", 5),
    "bert": build_bert,
    "bert_tokens": build_bert_tokens,
    "gpt2": build_gpt2,
    "distilbert": build_distilbert,
    "vit": build_vit,
    "lora_cnn": build_lora_cnn,
}


def write_parameter_list(model, path):
    """PyTorch's named_parameters(), one "name dim,dim,..." line each: what onnxtune's names must
    reproduce (tests/test_names.c)."""
    with open(path, "w") as f:
        for name, p in model.named_parameters():
            f.write(f"{name} {','.join(str(d) for d in p.shape)}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated model names")
    ap.add_argument("--out", default=HERE, help="parent directory (default: models/)")
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n] or list(MODELS)
    failed = []
    for name in names:
        if name not in MODELS:
            print(f"{name}: unknown model (have {', '.join(MODELS)})")
            failed.append(name)
            continue
        model, make_inputs, in_names, out_names, opsets, batches = MODELS[name]()
        common.make_params_distinct(model)
        model.eval()
        outdir = os.path.join(args.out, name)
        common.clean_refs(outdir)
        info = common.export_with_refs(model, make_inputs, in_names, out_names, outdir, opsets,
                                       batches=batches)
        for opset, err in info["errors"].items():
            print(f"{name}: opset {opset} does not export: {err}")
        if getattr(model, "list_parameters", False):
            write_parameter_list(model, os.path.join(outdir, "named_parameters.txt"))
        kept = list(info["files"])
        if not kept:
            failed.append(name)
            continue
        for opset in kept:
            size = info["sizes"][opset]
            sym = info["symbolic"].get(opset)
            print(f"{name:12s} opset {opset}  {info['files'][opset]:22s} {size:8d} B  "
                  f"params {info['params']:6d}  batch symbolic: {sym}")
            if size > MAX_BYTES:
                print(f"{name}: model is {size} bytes, over the {MAX_BYTES} limit")
                failed.append(name)
            if not sym:
                print(f"{name}: opset {opset} graph depends on the batch size")
                failed.append(name)
    if failed:
        print("FAILED:", ", ".join(sorted(set(failed))))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
