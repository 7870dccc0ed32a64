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
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef _WIN32
#include <pthread.h>
#define ADARAG_HAVE_PTHREADS 1
#endif

#define SENTINEL_BITS 0x8000000000000000ULL /* -0.0 */
#define MAX_THREADS 64

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
    int64_t k;       /* requested k (>= 1) */
    int64_t width;   /* output row width = min(k, n_docs) */
    int64_t *out_ids;
    double *out_scores;
    int64_t *out_counts;
    int64_t next;    /* next query to take (atomic) */
    int failed;      /* set when a worker could not allocate its scratch */
} job_t;

typedef struct {
    double *acc;      /* [n_docs] -0.0 when untouched */
    int32_t *touched; /* [n_docs] */
    double *hs;       /* [width] heap scores */
    int64_t *hi;      /* [width] heap ids */
} scratch_t;

static void scratch_free(scratch_t *s) {
    free(s->acc); free(s->touched); free(s->hs); free(s->hi);
    memset(s, 0, sizeof(*s));
}

static int scratch_alloc(scratch_t *s, int64_t n_docs, int64_t width) {
    size_t n = (size_t)(n_docs > 0 ? n_docs : 1), w = (size_t)(width > 0 ? width : 1);
    s->acc = (double *)malloc(n * sizeof(double));
    s->touched = (int32_t *)malloc(n * sizeof(int32_t));
    s->hs = (double *)malloc(w * sizeof(double));
    s->hi = (int64_t *)malloc(w * sizeof(int64_t));
    if (!s->acc || !s->touched || !s->hs || !s->hi) { scratch_free(s); return -1; }
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

/* Score query q into row q of the outputs. */
static void run_query(const job_t *J, scratch_t *S, int64_t q) {
    double *acc = S->acc;
    int32_t *touched = S->touched;
    const int32_t *idx = J->indices;
    const double *imp = J->impacts;
    int64_t total = 0;
    for (int64_t j = J->q_indptr[q]; j < J->q_indptr[q + 1]; j++) {
        int64_t t = J->q_terms[j];
        total += J->indptr[t + 1] - J->indptr[t];
    }
    double *hs = S->hs; int64_t *hi = S->hi;
    int64_t k = J->width, hn = 0;
    if (total * 2 > J->n_docs) {
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
}

static void *worker(void *arg) {
    job_t *J = (job_t *)arg;
    scratch_t S;
    memset(&S, 0, sizeof(S));
    if (scratch_alloc(&S, J->n_docs, J->width) != 0) {
        __atomic_store_n(&J->failed, 1, __ATOMIC_RELAXED);
        return NULL;
    }
    for (;;) {
        int64_t q = __atomic_fetch_add(&J->next, 1, __ATOMIC_RELAXED);
        if (q >= J->n_queries) break;
        run_query(J, &S, q);
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
"topk_batch(indptr, indices, impacts, n_docs, q_indptr, q_terms, k, n_threads, out_ids, out_scores, out_counts)\n"
"Score each query q_terms[q_indptr[q]:q_indptr[q+1]] over the CSC postings and write its top-k\n"
"(score desc, id asc) into row q of out_ids/out_scores [n_queries, min(k, n_docs)]; out_counts[q]\n"
"is the number of hits (only docs holding a query term). Unused slots get id -1, score 0.");

static PyObject *py_topk_batch(PyObject *self, PyObject *args) {
    PyObject *o_indptr, *o_indices, *o_impacts, *o_qindptr, *o_qterms, *o_oids, *o_oscores, *o_ocounts;
    Py_ssize_t n_docs, k, n_threads;
    if (!PyArg_ParseTuple(args, "OOOnOOnnOOO", &o_indptr, &o_indices, &o_impacts, &n_docs, &o_qindptr, &o_qterms,
                          &k, &n_threads, &o_oids, &o_oscores, &o_ocounts))
        return NULL;
    Py_buffer b[8];
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
    for (int64_t q = 0; q < J.n_queries; q++)
        if (J.q_indptr[q + 1] < J.q_indptr[q]) { PyErr_SetString(PyExc_ValueError, "q_indptr must be non-decreasing"); goto done; }
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
    if (J.n_queries > 0 && J.next < J.n_queries) { /* every worker failed to allocate its scratch */
        PyErr_NoMemory();
        goto done;
    }
    ret = Py_None;
    Py_INCREF(ret);
done:
    for (int i = 0; i < nb; i++) PyBuffer_Release(&b[i]);
    return ret;
}

static PyMethodDef methods[] = {
    {"topk_batch", py_topk_batch, METH_VARARGS, topk_batch_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_bm25", "Exact term-at-a-time BM25 top-k kernels (see kernels/bm25.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__bm25(void) { return PyModule_Create(&moduledef); }
