/* Term-at-a-time top-k over a CSC impact matrix (BM25 postings), exact float64 sums.
 *
 * Layout (validated by the caller once, trusted here): for term t, postings are
 * indices[indptr[t]:indptr[t+1]] (int32 doc ids, unique within a term) with precomputed
 * float64 impacts. A query is a list of term ids; duplicates count again, in order, so
 * sums are bitwise those of a left-to-right `score += impact` (rank-bm25's order).
 *
 * Per query only TOUCHED docs are visited: a dense accumulator holds -0.0 ("untouched")
 * for every doc on entry and exit; a doc is new when its slot is still -0.0 (an impact is
 * added as `v + 0.0`, so a touched slot never holds -0.0 again). Top-k uses a k-heap over
 * the touched list; ties break by (score desc, doc id asc). Scratch is per thread and per
 * call; the GIL is released around the whole batch. Buffer protocol only, no numpy C API.
 *
 * Long queries (many postings) can instead run an exact MaxScore (Turtle & Flood) when the caller
 * passes per-term upper bounds ub[t] >= max(0, max impact of t): terms are taken in decreasing bound
 * order; a doc is scored only from the FIRST of those lists that holds it (so once), by looking the
 * other terms up (galloping; doc ids ascend within a term) and summing its impacts in query order,
 * so the score is bitwise the exhaustive one. A doc is skipped when an upper bound of its score,
 * inflated by a rigorous float-rounding slack, is < the k-th best (score, id) in the heap (an equal
 * bound is still scored: it may tie and win on a lower id), and the whole query stops once the
 * bounds of the terms left sum below it. Negative impacts are safe: bounds use max(0, impact).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <float.h>
#include <math.h>

#ifndef _WIN32
#include <pthread.h>
#define ADARAG_HAVE_PTHREADS 1
#endif

#define SENTINEL_BITS 0x8000000000000000ULL /* -0.0 */
#define MAX_THREADS 64
/* auto mode: MaxScore when a query has >= MS_MIN_POSTINGS postings and >= n_docs / MS_DOC_FRACTION */
#define MS_MIN_POSTINGS 8192
#define MS_DOC_FRACTION 10

static inline uint64_t dbits(double x) { uint64_t u; memcpy(&u, &x, 8); return u; }

typedef struct {
    const int64_t *indptr;
    int64_t n_terms;
    const int32_t *indices;
    const double *impacts;
    int64_t n_docs;
    const int64_t *q_indptr;
    const int64_t *q_terms;
    int64_t n_queries;
    const double *term_ub; /* [n_terms] upper bounds >= max(0, max impact), or NULL: no MaxScore */
    const double *term_kth; /* [n_terms] k-th largest impact (-inf if fewer), or NULL; only if no impact < 0 */
    int64_t max_qlen; /* longest query (tokens) */
    int mode;        /* 0 auto, 1 exhaustive only, 2 MaxScore whenever term_ub is given */
    int64_t k;       /* requested k (>= 1) */
    int64_t width;   /* output row width = min(k, n_docs) */
    int64_t *out_ids;
    double *out_scores;
    int64_t *out_counts;
    int64_t next;    /* next query to take (atomic) */
    int failed;      /* set when a query could not get scratch memory */
} job_t;

typedef struct {
    double *acc;      /* [n_docs] -0.0 when untouched */
    int32_t *touched; /* [n_docs] */
    double *hs;       /* [width] heap scores */
    int64_t *hi;      /* [width] heap ids */
    /* MaxScore, per distinct query term ("slot"), [max_qlen] each */
    int64_t *ts, *te, *tcur, *tmult, *order, *tok_slot;
    double *tub, *rem, *val;
    char *present;
} scratch_t;

static void scratch_free(scratch_t *s) {
    free(s->acc); free(s->touched); free(s->hs); free(s->hi);
    free(s->ts); free(s->te); free(s->tcur); free(s->tmult); free(s->order); free(s->tok_slot);
    free(s->tub); free(s->rem); free(s->val); free(s->present);
    memset(s, 0, sizeof(*s));
}

static int scratch_alloc(scratch_t *s, int64_t n_docs, int64_t width, int64_t max_qlen) {
    size_t n = (size_t)(n_docs > 0 ? n_docs : 1), w = (size_t)(width > 0 ? width : 1);
    size_t m = (size_t)(max_qlen > 0 ? max_qlen : 1) + 1;
    (void)n; /* acc/touched: allocated on first use (scratch_dense); MaxScore never needs them */
    s->hs = (double *)malloc(w * sizeof(double));
    s->hi = (int64_t *)malloc(w * sizeof(int64_t));
    s->ts = (int64_t *)malloc(m * sizeof(int64_t)); s->te = (int64_t *)malloc(m * sizeof(int64_t));
    s->tcur = (int64_t *)malloc(m * sizeof(int64_t)); s->tmult = (int64_t *)malloc(m * sizeof(int64_t));
    s->order = (int64_t *)malloc(m * sizeof(int64_t)); s->tok_slot = (int64_t *)malloc(m * sizeof(int64_t));
    s->tub = (double *)malloc(m * sizeof(double)); s->rem = (double *)malloc(m * sizeof(double));
    s->val = (double *)malloc(m * sizeof(double)); s->present = (char *)malloc(m);
    if (!s->hs || !s->hi || !s->ts || !s->te || !s->tcur || !s->tmult || !s->order ||
        !s->tok_slot || !s->tub || !s->rem || !s->val || !s->present) { scratch_free(s); return -1; }
    return 0;
}

/* The dense accumulator (all -0.0) and touched list, allocated on first use. */
static int scratch_dense(scratch_t *s, int64_t n_docs) {
    if (s->acc) return 0;
    size_t n = (size_t)(n_docs > 0 ? n_docs : 1);
    s->acc = (double *)malloc(n * sizeof(double));
    s->touched = (int32_t *)malloc(n * sizeof(int32_t));
    if (!s->acc || !s->touched) { free(s->acc); free(s->touched); s->acc = NULL; s->touched = NULL; return -1; }
    for (size_t i = 0; i < n; i++) s->acc[i] = -0.0;
    return 0;
}

/* a is worse than b: lower score, or equal score and larger id. */
#define WORSE(sa, ia, sb, ib) ((sa) < (sb) || ((sa) == (sb) && (ia) > (ib)))

static inline void sift_down(double *hs, int64_t *hi, int64_t n, int64_t i) {
    double s = hs[i]; int64_t id = hi[i];
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && WORSE(hs[c + 1], hi[c + 1], hs[c], hi[c])) c++;
        if (!WORSE(hs[c], hi[c], s, id)) break;
        hs[i] = hs[c]; hi[i] = hi[c]; i = c;
    }
    hs[i] = s; hi[i] = id;
}

static inline void sift_up(double *hs, int64_t *hi, int64_t i) {
    double s = hs[i]; int64_t id = hi[i];
    while (i > 0) {
        int64_t p = (i - 1) / 2;
        if (!WORSE(s, id, hs[p], hi[p])) break;
        hs[i] = hs[p]; hi[i] = hi[p]; i = p;
    }
    hs[i] = s; hi[i] = id;
}

static inline void heap_offer(double *hs, int64_t *hi, int64_t *n, int64_t k, double s, int64_t id) {
    if (*n < k) { hs[*n] = s; hi[*n] = id; sift_up(hs, hi, *n); (*n)++; }
    else if (WORSE(hs[0], hi[0], s, id)) { hs[0] = s; hi[0] = id; sift_down(hs, hi, *n, 0); }
}

/* First position in [p, e) whose doc id is >= d (e if none): galloping, then binary search. */
static inline int64_t gallop(const int32_t *idx, int64_t p, int64_t e, int32_t d) {
    if (p >= e || idx[p] >= d) return p;
    int64_t lo = p, step = 1, hi = p + 1; /* invariant: idx[lo] < d */
    while (hi < e && idx[hi] < d) { lo = hi; step <<= 1; hi = lo + step; }
    if (hi > e) hi = e;
    while (hi - lo > 1) { int64_t mid = lo + ((hi - lo) >> 1); if (idx[mid] < d) lo = mid; else hi = mid; }
    return hi;
}

/* Exact MaxScore top-k of query q into the heap (hs, hi); returns the heap size. Needs J->term_ub. */
static int64_t run_maxscore(const job_t *J, scratch_t *S, int64_t q) {
    const int32_t *idx = J->indices;
    const double *imp = J->impacts;
    const int64_t q0 = J->q_indptr[q], m = J->q_indptr[q + 1] - q0;
    int64_t *ts = S->ts, *te = S->te, *tcur = S->tcur, *tmult = S->tmult, *order = S->order, *tok_slot = S->tok_slot;
    double *tub = S->tub, *rem = S->rem, *val = S->val;
    char *present = S->present;
    double *hs = S->hs; int64_t *hi = S->hi;
    const int64_t k = J->width;
    int64_t hn = 0, nd = 0;
    /* theta: the k-th best score is >= theta (pruning drops only bounds < theta). -inf until known. */
    double theta = -INFINITY;

    /* distinct non-empty terms ("slots"); tok_slot maps each query token to its slot or -1 */
    for (int64_t j = 0; j < m; j++) {
        int64_t t = J->q_terms[q0 + j], sl = -1;
        int64_t s = J->indptr[t], e = J->indptr[t + 1];
        if (s < e) {
            for (int64_t i = 0; i < nd; i++) if (ts[i] == s) { sl = i; break; }
            if (sl < 0) {
                sl = nd++;
                ts[sl] = s; te[sl] = e; tmult[sl] = 0;
                double u = J->term_ub[t];
                tub[sl] = u > 0.0 ? u : 0.0;
                /* seed: with no negative impacts a doc scores >= its impact in any one term, so k docs
                 * of term t score >= the k-th largest impact of t */
                if (J->term_kth != NULL && J->term_kth[t] > theta) theta = J->term_kth[t];
            }
            tmult[sl]++;
        }
        tok_slot[j] = sl;
    }
    if (nd == 0) return 0;
    for (int64_t i = 0; i < nd; i++) tub[i] = tub[i] * (double)tmult[i]; /* bound of the slot's tokens together */
    /* Any score is a float fold of <= m impacts; replacing each by a >= non-negative bound only raises the
     * fold (rounding is monotone), and a non-negative sum computed in another order is within
     * (1 + 2(m-1)eps) of it; 4(m+4)eps covers that and the rounding of the slack product itself. */
    const double slack = 1.0 + 4.0 * (double)(m + 4) * DBL_EPSILON;
    /* order[0..np) = processed lists (in processing order); order[np..nd) = the rest */
    for (int64_t i = 0; i < nd; i++) order[i] = i;
    for (int64_t np = 0; np < nd; np++) {
        /* the rest by bound ascending (insertion sort, nd is small) */
        for (int64_t i = np + 1; i < nd; i++) {
            int64_t x = order[i], p = i;
            while (p > np && tub[order[p - 1]] > tub[x]) { order[p] = order[p - 1]; p--; }
            order[p] = x;
        }
        /* stop once the bounds left sum below theta: every unscored doc is then out of reach */
        double acc = 0.0;
        for (int64_t i = np; i < nd; i++) acc += tub[order[i]];
        if (acc * slack < theta) break;
        /* next: the most bound per posting (greedy cover of "bound left < theta" at least cost); long
         * low-idf lists go last, where they are cut whole or filtered by one compare per posting */
        int64_t best = np;
        for (int64_t i = np + 1; i < nd; i++) {
            int64_t a = order[i], b = order[best];
            double la = (double)(te[a] - ts[a]), lb = (double)(te[b] - ts[b]);
            if (tub[a] * lb > tub[b] * la || (tub[a] * lb == tub[b] * la && la < lb)) best = i;
        }
        const int64_t sl = order[best];
        for (int64_t i = best; i > np; i--) order[i] = order[i - 1];
        order[np] = sl;
        /* lookups for survivors: the rest, largest bound first; rem[i] = bound of order[i..nd) */
        for (int64_t i = np + 1, j = nd - 1; i < j; i++, j--) { int64_t x = order[i]; order[i] = order[j]; order[j] = x; }
        rem[nd] = 0.0;
        for (int64_t i = nd - 1; i > np; i--) rem[i] = rem[i + 1] + tub[order[i]];
        const double rest = rem[np + 1];
        const double mult = (double)tmult[sl];
        for (int64_t r = 0; r < nd; r++) tcur[r] = ts[r];
        for (int64_t p = ts[sl], e = te[sl]; p < e; p++) {
            const double v = imp[p];
            double vp = v > 0.0 ? v * mult : 0.0;
            if ((vp + rest) * slack < theta) continue;
            const int32_t d = idx[p];
            /* held by a list taken earlier: already scored there (or pruned there with a valid bound) */
            int seen = 0;
            for (int64_t r = 0; r < np; r++) {
                int64_t o = order[r];
                int64_t c = gallop(idx, tcur[o], te[o], d);
                tcur[o] = c;
                if (c < te[o] && idx[c] == d) { seen = 1; break; }
            }
            if (seen) continue;
            for (int64_t r = 0; r < np; r++) present[order[r]] = 0;
            present[sl] = 1; val[sl] = v;
            double known = vp;
            int dead = 0;
            for (int64_t r = np + 1; r < nd; r++) {
                int64_t o = order[r];
                int64_t c = gallop(idx, tcur[o], te[o], d);
                tcur[o] = c;
                if (c < te[o] && idx[c] == d) {
                    double w = imp[c];
                    present[o] = 1; val[o] = w;
                    if (w > 0.0) known += w * (double)tmult[o];
                } else {
                    present[o] = 0;
                }
                if ((known + rem[r + 1]) * slack < theta) { dead = 1; break; }
            }
            if (dead) continue;
            double sc = 0.0; /* the exhaustive order: query tokens left to right, duplicates again */
            for (int64_t j = 0; j < m; j++) {
                int64_t o = tok_slot[j];
                if (o >= 0 && present[o]) sc = sc + (val[o] + 0.0);
            }
            if (hn < k) {
                heap_offer(hs, hi, &hn, k, sc, d);
                if (hn == k && hs[0] > theta) theta = hs[0];
            } else if (sc > hs[0] || (sc == hs[0] && d < hi[0])) {
                hs[0] = sc; hi[0] = d; sift_down(hs, hi, hn, 0);
                if (hs[0] > theta) theta = hs[0];
            }
        }
    }
    return hn;
}

/* Score query q into row q of the outputs; -1 when out of memory. */
static int run_query(const job_t *J, scratch_t *S, int64_t q) {
    const int32_t *idx = J->indices;
    const double *imp = J->impacts;
    int64_t total = 0;
    for (int64_t j = J->q_indptr[q]; j < J->q_indptr[q + 1]; j++) {
        int64_t t = J->q_terms[j];
        total += J->indptr[t + 1] - J->indptr[t];
    }
    double *hs = S->hs; int64_t *hi = S->hi;
    int64_t k = J->width, hn = 0;
    int use_ms = J->term_ub != NULL && J->mode != 1 &&
                 (J->mode == 2 || (total >= MS_MIN_POSTINGS && total * MS_DOC_FRACTION >= J->n_docs));
    if (!use_ms && total > 0 && scratch_dense(S, J->n_docs) != 0) {
        if (J->term_ub == NULL) return -1;
        use_ms = 1; /* no memory for the accumulator: MaxScore needs none */
    }
    double *acc = S->acc;
    int32_t *touched = S->touched;
    if (use_ms) {
        hn = run_maxscore(J, S, q);
    } else if (total == 0) {
        hn = 0;
    } else if (total * 2 > J->n_docs) {
        /* dense: no touched list; scan all docs once, sequentially, resetting as we go */
        for (int64_t j = J->q_indptr[q]; j < J->q_indptr[q + 1]; j++) {
            int64_t t = J->q_terms[j];
            for (int64_t p = J->indptr[t], e = J->indptr[t + 1]; p < e; p++) {
                int32_t d = idx[p];
                acc[d] = acc[d] + (imp[p] + 0.0);
            }
        }
        for (int64_t d = 0; d < J->n_docs; d++) {
            double a = acc[d];
            if (dbits(a) == SENTINEL_BITS) continue;
            acc[d] = -0.0;
            if (hn < k) heap_offer(hs, hi, &hn, k, a, d);
            else if (a > hs[0] || (a == hs[0] && d < hi[0])) { hs[0] = a; hi[0] = d; sift_down(hs, hi, hn, 0); }
        }
    } else {
        int64_t nt = 0;
        int first = 1;
        for (int64_t j = J->q_indptr[q]; j < J->q_indptr[q + 1]; j++) {
            int64_t t = J->q_terms[j];
            int64_t s = J->indptr[t], e = J->indptr[t + 1];
            if (s >= e) continue;
            if (first) { /* nothing touched yet: every doc is new */
                for (int64_t p = s; p < e; p++) {
                    int32_t d = idx[p];
                    acc[d] = -0.0 + (imp[p] + 0.0);
                    touched[nt++] = d;
                }
                first = 0;
            } else {
                for (int64_t p = s; p < e; p++) {
                    int32_t d = idx[p];
                    double a = acc[d];
                    touched[nt] = d;
                    nt += (dbits(a) == SENTINEL_BITS);
                    acc[d] = a + (imp[p] + 0.0);
                }
            }
        }
        for (int64_t i = 0; i < nt; i++) {
            int32_t d = touched[i];
            double a = acc[d];
            acc[d] = -0.0;
            if (hn < k) heap_offer(hs, hi, &hn, k, a, d);
            else if (a > hs[0] || (a == hs[0] && d < hi[0])) { hs[0] = a; hi[0] = d; sift_down(hs, hi, hn, 0); }
        }
    }
    /* heap-sort: pop the worst to the back */
    int64_t *oi = J->out_ids + q * J->width;
    double *os = J->out_scores + q * J->width;
    int64_t cnt = hn;
    while (hn > 0) {
        oi[hn - 1] = hi[0]; os[hn - 1] = hs[0];
        hn--;
        if (hn > 0) { hs[0] = hs[hn]; hi[0] = hi[hn]; sift_down(hs, hi, hn, 0); }
    }
    for (int64_t i = cnt; i < J->width; i++) { oi[i] = -1; os[i] = 0.0; }
    J->out_counts[q] = cnt;
    return 0;
}

static void *worker(void *arg) {
    job_t *J = (job_t *)arg;
    scratch_t S;
    memset(&S, 0, sizeof(S));
    if (scratch_alloc(&S, J->n_docs, J->width, J->max_qlen) != 0)
        return NULL; /* the other workers take its queries; none left at all -> MemoryError */
    for (;;) {
        int64_t q = __atomic_fetch_add(&J->next, 1, __ATOMIC_RELAXED);
        if (q >= J->n_queries) break;
        if (run_query(J, &S, q) != 0) { __atomic_store_n(&J->failed, 1, __ATOMIC_RELAXED); break; }
    }
    scratch_free(&S);
    return NULL;
}

/* ---- argument plumbing ---- */

static int fmt_is(const Py_buffer *b, const char *codes, Py_ssize_t itemsize) {
    const char *f = b->format ? b->format : "B";
    if (*f == '@' || *f == '=' || *f == '<') f++;
    return b->itemsize == itemsize && f[0] != '\0' && f[1] == '\0' && strchr(codes, f[0]) != NULL;
}

static int get_buf(PyObject *o, Py_buffer *b, const char *name, const char *codes, Py_ssize_t itemsize, int writable) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(o, b, flags) != 0) {
        PyErr_Format(PyExc_TypeError, "%s must be a C-contiguous%s buffer", name, writable ? " writable" : "");
        return -1;
    }
    if (!fmt_is(b, codes, itemsize)) {
        PyErr_Format(PyExc_TypeError, "%s has format '%s' (itemsize %zd); expected %zd-byte '%s'",
                     name, b->format ? b->format : "B", b->itemsize, itemsize, codes);
        PyBuffer_Release(b);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(topk_batch_doc,
"topk_batch(indptr, indices, impacts, n_docs, q_indptr, q_terms, k, n_threads, out_ids, out_scores, out_counts,\n           term_ub=None, mode=0)\n"
"Score each query q_terms[q_indptr[q]:q_indptr[q+1]] over the CSC postings and write its top-k\n"
"(score desc, id asc) into row q of out_ids/out_scores [n_queries, min(k, n_docs)]; out_counts[q]\n"
"is the number of hits (only docs holding a query term). Unused slots get id -1, score 0.\n"
"Optional term_ub [n_terms] float64 (each >= max(0, max impact of the term)) enables exact MaxScore\n"
"pruning for long queries; mode 0 picks per query, 1 never prunes, 2 prunes every query.");

static PyObject *py_topk_batch(PyObject *self, PyObject *args) {
    PyObject *o_indptr, *o_indices, *o_impacts, *o_qindptr, *o_qterms, *o_oids, *o_oscores, *o_ocounts;
    PyObject *o_ub = Py_None, *o_kth = Py_None;
    Py_ssize_t n_docs, k, n_threads;
    int mode = 0;
    if (!PyArg_ParseTuple(args, "OOOnOOnnOOO|OiO", &o_indptr, &o_indices, &o_impacts, &n_docs, &o_qindptr, &o_qterms,
                          &k, &n_threads, &o_oids, &o_oscores, &o_ocounts, &o_ub, &mode, &o_kth))
        return NULL;
    Py_buffer b[10];
    int nb = 0;
    PyObject *ret = NULL;
    const char *I64 = "lq";
    if (get_buf(o_indptr, &b[nb], "indptr", I64, 8, 0)) goto done;
    nb++;
    if (get_buf(o_indices, &b[nb], "indices", "i", 4, 0)) goto done;
    nb++;
    if (get_buf(o_impacts, &b[nb], "impacts", "d", 8, 0)) goto done;
    nb++;
    if (get_buf(o_qindptr, &b[nb], "q_indptr", I64, 8, 0)) goto done;
    nb++;
    if (get_buf(o_qterms, &b[nb], "q_terms", I64, 8, 0)) goto done;
    nb++;
    if (get_buf(o_oids, &b[nb], "out_ids", I64, 8, 1)) goto done;
    nb++;
    if (get_buf(o_oscores, &b[nb], "out_scores", "d", 8, 1)) goto done;
    nb++;
    if (get_buf(o_ocounts, &b[nb], "out_counts", I64, 8, 1)) goto done;
    nb++;
    if (o_ub != Py_None) {
        if (get_buf(o_ub, &b[nb], "term_ub", "d", 8, 0)) goto done;
        nb++;
    }
    int kth_at = nb;
    if (o_kth != Py_None) {
        if (get_buf(o_kth, &b[nb], "term_kth", "d", 8, 0)) goto done;
        nb++;
    }

    job_t J;
    memset(&J, 0, sizeof(J));
    J.indptr = (const int64_t *)b[0].buf;
    J.n_terms = b[0].len / 8 - 1;
    J.indices = (const int32_t *)b[1].buf;
    J.impacts = (const double *)b[2].buf;
    J.n_docs = n_docs;
    J.q_indptr = (const int64_t *)b[3].buf;
    J.n_queries = b[3].len / 8 - 1;
    J.q_terms = (const int64_t *)b[4].buf;
    J.k = k;
    J.width = k < n_docs ? k : n_docs;
    J.out_ids = (int64_t *)b[5].buf;
    J.out_scores = (double *)b[6].buf;
    J.out_counts = (int64_t *)b[7].buf;
    int64_t nnz = b[1].len / 4;
    J.term_ub = o_ub != Py_None ? (const double *)b[8].buf : NULL;
    J.mode = mode;
    J.term_kth = o_kth != Py_None ? (const double *)b[kth_at].buf : NULL;
    if (J.term_kth && (!J.term_ub || b[kth_at].len / 8 != J.n_terms)) { PyErr_SetString(PyExc_ValueError, "term_kth needs term_ub and one value per term"); goto done; }
    if (mode < 0 || mode > 2) { PyErr_SetString(PyExc_ValueError, "mode must be 0 (auto), 1 (exhaustive) or 2 (maxscore)"); goto done; }
    if (J.term_ub && b[8].len / 8 != J.n_terms) { PyErr_SetString(PyExc_ValueError, "term_ub must hold one bound per term (len(indptr) - 1)"); goto done; }

    if (k < 1) { PyErr_SetString(PyExc_ValueError, "k must be >= 1"); goto done; }
    if (n_docs < 0 || n_docs > INT32_MAX) { PyErr_SetString(PyExc_ValueError, "n_docs must be in [0, 2**31)"); goto done; }
    if (J.n_terms < 0) { PyErr_SetString(PyExc_ValueError, "indptr must have n_terms + 1 >= 1 entries"); goto done; }
    if (b[2].len / 8 != nnz) { PyErr_SetString(PyExc_ValueError, "indices and impacts differ in length"); goto done; }
    if (J.indptr[0] != 0 || J.indptr[J.n_terms] != nnz) {
        PyErr_SetString(PyExc_ValueError, "indptr must start at 0 and end at len(indices)"); goto done;
    }
    if (J.n_queries < 0 || J.q_indptr[0] != 0 || J.q_indptr[J.n_queries] != b[4].len / 8) {
        PyErr_SetString(PyExc_ValueError, "q_indptr must start at 0 and end at len(q_terms)"); goto done;
    }
    for (int64_t q = 0; q < J.n_queries; q++) {
        if (J.q_indptr[q + 1] < J.q_indptr[q]) { PyErr_SetString(PyExc_ValueError, "q_indptr must be non-decreasing"); goto done; }
        if (J.q_indptr[q + 1] - J.q_indptr[q] > J.max_qlen) J.max_qlen = J.q_indptr[q + 1] - J.q_indptr[q];
    }
    for (int64_t j = 0; j < b[4].len / 8; j++) {
        int64_t t = J.q_terms[j];
        if (t < 0 || t >= J.n_terms) { PyErr_Format(PyExc_ValueError, "q_terms[%lld] = %lld is not a term id in [0, %lld)", (long long)j, (long long)t, (long long)J.n_terms); goto done; }
        if (J.indptr[t + 1] < J.indptr[t] || J.indptr[t + 1] > nnz) { PyErr_Format(PyExc_ValueError, "indptr is corrupt at term %lld", (long long)t); goto done; }
    }
    if (b[5].len / 8 != J.n_queries * J.width || b[6].len / 8 != J.n_queries * J.width || b[7].len / 8 != J.n_queries) {
        PyErr_SetString(PyExc_ValueError, "out_ids/out_scores must hold n_queries * min(k, n_docs) items, out_counts n_queries");
        goto done;
    }
    if (n_threads < 1) n_threads = 1;
    if (n_threads > MAX_THREADS) n_threads = MAX_THREADS;
    if (n_threads > J.n_queries) n_threads = J.n_queries > 0 ? J.n_queries : 1;

    if (J.n_queries > 0) {
        Py_BEGIN_ALLOW_THREADS
#ifdef ADARAG_HAVE_PTHREADS
        pthread_t tids[MAX_THREADS];
        int started[MAX_THREADS];
        for (Py_ssize_t i = 1; i < n_threads; i++) started[i] = pthread_create(&tids[i], NULL, worker, &J) == 0;
        worker(&J); /* this thread works too; if a spawn failed, the others just take more queries */
        for (Py_ssize_t i = 1; i < n_threads; i++) if (started[i]) pthread_join(tids[i], NULL);
#else
        worker(&J);
#endif
        Py_END_ALLOW_THREADS
    }
    if (J.n_queries > 0 && (J.next < J.n_queries || J.failed)) { /* out of memory for scratch */
        PyErr_NoMemory();
        goto done;
    }
    ret = Py_None;
    Py_INCREF(ret);
done:
    for (int i = 0; i < nb; i++) PyBuffer_Release(&b[i]);
    return ret;
}

PyDoc_STRVAR(term_kth_doc,
"term_kth(indptr, impacts, k, out)\n"
"out[t] = the k-th largest impact of term t (duplicates count), -inf for a term with fewer than k postings.");

static PyObject *py_term_kth(PyObject *self, PyObject *args) {
    PyObject *o_indptr, *o_impacts, *o_out;
    Py_ssize_t k;
    if (!PyArg_ParseTuple(args, "OOnO", &o_indptr, &o_impacts, &k, &o_out)) return NULL;
    Py_buffer b[3];
    int nb = 0;
    PyObject *ret = NULL;
    double *heap = NULL;
    if (get_buf(o_indptr, &b[nb], "indptr", "lq", 8, 0)) goto done;
    nb++;
    if (get_buf(o_impacts, &b[nb], "impacts", "d", 8, 0)) goto done;
    nb++;
    if (get_buf(o_out, &b[nb], "out", "d", 8, 1)) goto done;
    nb++;
    const int64_t *indptr = (const int64_t *)b[0].buf;
    const double *imp = (const double *)b[1].buf;
    double *out = (double *)b[2].buf;
    int64_t nt = b[0].len / 8 - 1, nnz = b[1].len / 8;
    if (k < 1) { PyErr_SetString(PyExc_ValueError, "k must be >= 1"); goto done; }
    if (nt < 0 || b[2].len / 8 != nt || indptr[0] != 0 || indptr[nt] != nnz) {
        PyErr_SetString(PyExc_ValueError, "indptr/impacts/out do not match"); goto done;
    }
    for (int64_t t = 0; t < nt; t++)
        if (indptr[t + 1] < indptr[t]) { PyErr_SetString(PyExc_ValueError, "indptr must be non-decreasing"); goto done; }
    heap = (double *)malloc((size_t)k * sizeof(double));
    if (!heap) { PyErr_NoMemory(); goto done; }
    Py_BEGIN_ALLOW_THREADS
    for (int64_t t = 0; t < nt; t++) {
        int64_t s = indptr[t], e = indptr[t + 1];
        if (e - s < k) { out[t] = -INFINITY; continue; }
        int64_t n = 0; /* min-heap of the k largest */
        for (int64_t p = s; p < e; p++) {
            double v = imp[p];
            if (n < k) {
                int64_t i = n++;
                while (i > 0 && heap[(i - 1) / 2] > v) { heap[i] = heap[(i - 1) / 2]; i = (i - 1) / 2; }
                heap[i] = v;
            } else if (v > heap[0]) {
                int64_t i = 0;
                for (;;) {
                    int64_t c = 2 * i + 1;
                    if (c >= n) break;
                    if (c + 1 < n && heap[c + 1] < heap[c]) c++;
                    if (heap[c] >= v) break;
                    heap[i] = heap[c]; i = c;
                }
                heap[i] = v;
            }
        }
        out[t] = heap[0];
    }
    Py_END_ALLOW_THREADS
    ret = Py_None;
    Py_INCREF(ret);
done:
    free(heap);
    for (int i = 0; i < nb; i++) PyBuffer_Release(&b[i]);
    return ret;
}

static PyMethodDef methods[] = {
    {"topk_batch", py_topk_batch, METH_VARARGS, topk_batch_doc},
    {"term_kth", py_term_kth, METH_VARARGS, term_kth_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_bm25", "Exact term-at-a-time BM25 top-k kernels (see kernels/bm25.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__bm25(void) { return PyModule_Create(&moduledef); }
