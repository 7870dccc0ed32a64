"""Can the old recipe (BCE, pooler head) overfit 20 training queries? Train-set nDCG@10 of CE alone over fused top 20.

    ADARAG_CACHE_DIR=/tmp/adarag_cache nice -n 5 taskset -c 0 python3 results/reranker-train/overfit_diag.py 1e-4 8
"""
import sys, time, json, math
import torch
from eval.beir import load_beir
from indexers.index import open_index
from retrievers.rerank_train import TrainParams, qrels_pairs, split_queries, train_cross_encoder, _ndcg10
from retrievers.rerank import hit_text

lr = float(sys.argv[1]); epochs = int(sys.argv[2])
data = load_beir("/work/shared/data/hotpotqa")
train, held = split_queries(list(data.qrels), 0, 0.5)
qids = train[:20]
p = TrainParams(epochs=epochs, lr=lr, max_length=160, hard_negatives=4, random_negatives=1, threads=1, batch_size=16)
with open_index("/tmp/e_hotpot_index") as ix:
    pairs, cand = qrels_pairs(ix, data.queries, data.qrels, qids, p)
    print("pairs", len(pairs), flush=True)
    t=time.time(); model, tok, stats = train_cross_encoder(pairs, p); print(stats, time.time()-t, flush=True)
    model.eval()
    vals, base = [], []
    for q in qids:
        head = cand[q][:20]
        enc = tok([data.queries[q]]*len(head), [hit_text(h) for h in head], truncation="only_second", max_length=160, padding=True, return_tensors="pt")
        with torch.inference_mode(): s = model(**enc).logits[:,0].tolist()
        rel = {d for d,g in data.qrels[q].items() if g>0}
        order = sorted(range(len(head)), key=lambda i:-s[i])
        vals.append(_ndcg10([head[i].doc_id for i in order], rel)); base.append(_ndcg10([h.doc_id for h in head], rel))
    print(json.dumps({"lr": lr, "epochs": epochs, "train_ndcg_ce": sum(vals)/len(vals), "train_ndcg_fused": sum(base)/len(base)}))
