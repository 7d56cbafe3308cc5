#!/bin/sh
# demo.sh - a small text classifier fine-tuned by onnxtune: a BERT-style encoder (inputs input_ids and
# attention_mask) pretrained on a per-token task (does this token occur elsewhere in the sequence?) gets its
# last layer and a new 3-class head on the mean of its hidden states over the attention mask trained for a
# sequence task (how many distinct tokens repeat: none, one, two or more), then is evaluated and exported;
# then the same task with LoRA adapters on query and value instead (merged export and adapters file).
# Made by models/make_textcls.py, which also prints PyTorch's accuracy for the same settings (yardstick.json).
# Run from anywhere; environment: ONNXTUNE (default build/onnxtune), OUT (default build), EPOCHS (default 5), THREADS (default: the machine's).
set -eu
cd "$(dirname "$0")/../.."
ONNXTUNE=${ONNXTUNE:-build/onnxtune}
OUT=${OUT:-build}
EPOCHS=${EPOCHS:-5}
D=models/textcls

echo "== the model: two inputs, a token classifier [N,T,2] on top"
"$ONNXTUNE" dump "$D/model.onnx" --summary | head -8

echo "== compile: the last encoder layer (a glob on PyTorch names) + head linear:3 on --pool mean, AdamW"
"$ONNXTUNE" compile "$D/model.onnx" --train 'encoder.layer.1.*' --head linear:3 --pool mean \
    --optimizer adamw --batch 32 --epochs "$EPOCHS" --lr 3e-3 --seed 1 -o "$OUT/textcls_trainer"

echo "== fine-tune on $D/train.npz (keys input_ids, attention_mask, y), validate on $D/val.npz"
"$OUT/textcls_trainer" ${THREADS:+--threads "$THREADS"} --train-x "$D/train.npz" --val-x "$D/val.npz" --classes none,one,two+ \
    --metrics "$OUT/textcls_metrics.jsonl" --export "$OUT/textcls_finetuned.onnx"

echo "== the export evaluated, each input from its own file (NAME=FILE.npy)"
"$OUT/textcls_trainer" eval ${THREADS:+--threads "$THREADS"} --weights "$OUT/textcls_finetuned.onnx" --x "input_ids=$D/val_input_ids.npy" \
    --x "attention_mask=$D/val_attention_mask.npy" --y "$D/val_y.npy" --confusion
"$OUT/textcls_trainer" predict ${THREADS:+--threads "$THREADS"} --weights "$OUT/textcls_finetuned.onnx" --x "$D/val.npz" \
    --output "$OUT/textcls_val_logits.npy" --output-labels "$OUT/textcls_val_labels.npy"

echo "== the export run by onnxtune (inputs by name)"
"$ONNXTUNE" run "$OUT/textcls_finetuned.onnx" --input "input_ids=$D/val_input_ids.npy" \
    --input "attention_mask=$D/val_attention_mask.npy" --output-dir "$OUT/textcls_val_out"
echo "== LoRA instead: rank-8 adapters on query and value of every layer + the same head, base weights frozen"
"$ONNXTUNE" compile "$D/model.onnx" --lora '*attention.self.query.weight' --lora '*attention.self.value.weight' \
    --lora-rank 8 --lora-alpha 16 --head linear:3 --pool mean --optimizer adamw --batch 32 --epochs "$EPOCHS" \
    --lr 1e-2 --seed 1 -o "$OUT/textcls_lora_trainer"
"$OUT/textcls_lora_trainer" ${THREADS:+--threads "$THREADS"} --train-x "$D/train.npz" --val-x "$D/val.npz" \
    --classes none,one,two+ --metrics "$OUT/textcls_lora_metrics.jsonl" --export "$OUT/textcls_lora_merged.onnx" \
    --export-adapters "$OUT/textcls_lora_adapters.onnx"
echo "== the merged export (standard ONNX, adapters folded into the weights) evaluated"
"$OUT/textcls_lora_trainer" eval ${THREADS:+--threads "$THREADS"} --weights "$OUT/textcls_lora_merged.onnx" --x "$D/val.npz"
echo "exports: $OUT/textcls_finetuned.onnx, $OUT/textcls_lora_merged.onnx (adapters alone: $OUT/textcls_lora_adapters.onnx); PyTorch's accuracy for these settings: $D/yardstick.json"
