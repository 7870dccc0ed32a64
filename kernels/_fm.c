/* FM-index queries over a wavelet matrix of the BWT (see kernels/fm_index.py for the layout and semantics).
 *
 * The index is built over the REVERSED text plus a sentinel (code 0), so a left-to-right pattern is a
 * backward search and one step right-extends it; the BWT symbols of a pattern's interval are the tokens that
 * FOLLOW it in the original text (continuations). Symbols are compact codes 1..sigma (code = 1 + index in the
 * sorted `symbols` array). Per wavelet level l: bits[l] (uint64 words, LSB first), ckpt[l][b] = ones before
 * block b (blocks of occ_rate bits), zeros[l] = zeros on the level. sym_start[c] = where code c's run starts on
 * the last level, so rank(c, i) = (i mapped down all levels) - sym_start[c]. Sampled suffix array: rows whose
 * suffix start is a multiple of sa_rate are marked in mbits/mckpt; samples[rank1(mark, row)] = that start.
 *
 * Arrays are validated by the caller once (lengths here, contents in the loader); LF results are clamped and
 * locate walks are bounded so corrupt contents give wrong answers or an error, never an out-of-bounds read.
 * Buffer protocol only, no numpy C API; the GIL is released around locate and continuations.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    Py_buffer bufs[9];
    int nbufs;
    const uint64_t *bits;
    const uint32_t *ckpt;
    const int64_t *zeros, *sym_start, *C;
    const uint32_t *symbols;
    const uint64_t *mbits;
    const uint32_t *mckpt;
    const uint32_t *samples;
    int64_t n_rows, L, W, NB, n_symbols, n_samples, sa_rate;
    int occ_shift; /* log2(occ_rate) */
} FM;

static inline int64_t rank1(const uint64_t *bits, const uint32_t *ckpt, int occ_shift, int64_t i) {
    int64_t blk = i >> occ_shift, r = ckpt[blk];
    int64_t w = blk << (occ_shift - 6), we = i >> 6;
    for (; w < we; w++) r += __builtin_popcountll(bits[w]);
    int s = (int)(i & 63);
    if (s) r += __builtin_popcountll(bits[we] & ((~0ULL) >> (64 - s)));
    return r;
}

static inline int64_t clamp(const FM *f, int64_t x) { return x < 0 ? 0 : (x > f->n_rows ? f->n_rows : x); }

/* code of a symbol (1..n_symbols), or -1 when absent */
static inline int64_t code_of(const FM *f, int64_t sym) {
    if (sym < 0 || sym > 0xFFFFFFFFLL) return -1;
    int64_t lo = 0, hi = f->n_symbols;
    uint32_t s = (uint32_t)sym;
    while (lo < hi) { int64_t mid = (lo + hi) >> 1; if (f->symbols[mid] < s) lo = mid + 1; else hi = mid; }
    return (lo < f->n_symbols && f->symbols[lo] == s) ? lo + 1 : -1;
}

/* one backward step: [sp, ep) of P -> of cP (c a code); empty gives sp == ep */
static inline void step(const FM *f, int64_t c, int64_t *psp, int64_t *pep) {
    int64_t sp = *psp, ep = *pep;
    for (int64_t l = 0; l < f->L && sp < ep; l++) {
        const uint64_t *b = f->bits + l * f->W;
        const uint32_t *k = f->ckpt + l * (f->NB + 1);
        int64_t rs = rank1(b, k, f->occ_shift, sp), re = rank1(b, k, f->occ_shift, ep);
        if ((c >> (f->L - 1 - l)) & 1) { sp = f->zeros[l] + rs; ep = f->zeros[l] + re; }
        else { sp -= rs; ep -= re; }
    }
    if (sp >= ep) { *psp = *pep = 0; return; }
    *psp = clamp(f, f->C[c] + sp - f->sym_start[c]);
    *pep = clamp(f, f->C[c] + ep - f->sym_start[c]);
}

static inline int64_t lf(const FM *f, int64_t i) {
    int64_t c = 0;
    for (int64_t l = 0; l < f->L; l++) {
        const uint64_t *b = f->bits + l * f->W;
        int64_t r = rank1(b, f->ckpt + l * (f->NB + 1), f->occ_shift, i);
        int bit = (int)((b[i >> 6] >> (i & 63)) & 1);
        c = (c << 1) | bit;
        i = bit ? f->zeros[l] + r : i - r;
        i = clamp(f, i);
    }
    if (c >= f->n_symbols + 1) return 0;
    int64_t x = f->C[c] + i - f->sym_start[c];
    return x < 0 ? 0 : (x >= f->n_rows ? f->n_rows - 1 : x);
}

/* suffix start of row i, or -1 when the walk exceeds sa_rate steps (corrupt marks) */
static inline int64_t sa_at(const FM *f, int64_t i) {
    for (int64_t steps = 0; steps <= f->sa_rate; steps++) {
        if ((f->mbits[i >> 6] >> (i & 63)) & 1) {
            int64_t j = rank1(f->mbits, f->mckpt, f->occ_shift, i);
            if (j >= f->n_samples) return -1;
            return (int64_t)f->samples[j] + steps;
        }
        i = lf(f, i);
    }
    return -1;
}

/* pattern (a sequence of symbols) -> interval; returns 0 ok, -1 on a Python error */
static int interval_of(const FM *f, PyObject *pat, int64_t *psp, int64_t *pep, int64_t *pm) {
    PyObject *seq = PySequence_Fast(pat, "pattern must be a sequence of ints");
    if (!seq) return -1;
    Py_ssize_t m = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    int64_t sp = 0, ep = f->n_rows;
    for (Py_ssize_t j = 0; j < m && sp < ep; j++) {
        long long s = PyLong_AsLongLong(items[j]);
        if (s == -1 && PyErr_Occurred()) { Py_DECREF(seq); return -1; }
        int64_t c = code_of(f, s);
        if (c < 0) { sp = ep = 0; break; }
        step(f, c, &sp, &ep);
    }
    Py_DECREF(seq);
    if (sp >= ep) sp = ep = 0;
    *psp = sp; *pep = ep; *pm = m;
    return 0;
}

static PyObject *FM_interval(FM *f, PyObject *pat) {
    int64_t sp, ep, m;
    if (interval_of(f, pat, &sp, &ep, &m) < 0) return NULL;
    return Py_BuildValue("LL", (long long)sp, (long long)ep);
}

static PyObject *FM_count(FM *f, PyObject *pat) {
    int64_t sp, ep, m;
    if (interval_of(f, pat, &sp, &ep, &m) < 0) return NULL;
    return PyLong_FromLongLong(ep - sp);
}

static PyObject *FM_extend(FM *f, PyObject *args) {
    long long sp, ep, sym;
    if (!PyArg_ParseTuple(args, "LLL", &sp, &ep, &sym)) return NULL;
    if (sp < 0 || ep > f->n_rows || sp > ep) { PyErr_SetString(PyExc_ValueError, "bad interval"); return NULL; }
    int64_t c = code_of(f, sym), a = sp, b = ep;
    if (c < 0 || a >= b) a = b = 0; else step(f, c, &a, &b);
    return Py_BuildValue("LL", (long long)a, (long long)b);
}

/* locate(sp, ep, out int64 [>= ep - sp]) -> number written; suffix starts in reversed-text coordinates */
static PyObject *FM_locate(FM *f, PyObject *args) {
    long long sp, ep; PyObject *o_out; Py_buffer out;
    if (!PyArg_ParseTuple(args, "LLO", &sp, &ep, &o_out)) return NULL;
    if (sp < 0 || ep > f->n_rows || sp > ep) { PyErr_SetString(PyExc_ValueError, "bad interval"); return NULL; }
    if (PyObject_GetBuffer(o_out, &out, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (out.len < (Py_ssize_t)((ep - sp) * 8)) {
        PyBuffer_Release(&out); PyErr_SetString(PyExc_ValueError, "output buffer too small"); return NULL;
    }
    int64_t *o = (int64_t *)out.buf; int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    for (int64_t i = sp; i < ep; i++) { o[i - sp] = sa_at(f, i); if (o[i - sp] < 0) { bad = 1; break; } }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&out);
    if (bad) { PyErr_SetString(PyExc_ValueError, "corrupt sampled suffix array: rebuild the index"); return NULL; }
    return PyLong_FromLongLong(ep - sp);
}

typedef struct { int64_t sp, ep, lo, level; } node_t;

/* heap order: larger interval first, then smaller code range */
static inline int before(const node_t *a, const node_t *b) {
    int64_t x = a->ep - a->sp, y = b->ep - b->sp;
    return x > y || (x == y && a->lo < b->lo);
}

static int heap_push(node_t **h, int64_t *n, int64_t *cap, node_t v) {
    if (*n == *cap) {
        int64_t nc = *cap ? *cap * 2 : 64;
        node_t *nh = (node_t *)realloc(*h, (size_t)nc * sizeof(node_t));
        if (!nh) return -1;
        *h = nh; *cap = nc;
    }
    int64_t i = (*n)++;
    while (i > 0) { int64_t p = (i - 1) / 2; if (!before(&v, &(*h)[p])) break; (*h)[i] = (*h)[p]; i = p; }
    (*h)[i] = v;
    return 0;
}

static node_t heap_pop(node_t *h, int64_t *n) {
    node_t top = h[0], v = h[--(*n)];
    int64_t i = 0;
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && before(&h[c + 1], &h[c])) c++;
        if (!before(&h[c], &v)) break;
        h[i] = h[c]; i = c;
    }
    if (*n) h[i] = v;
    return top;
}

/* continuations(sp, ep, k, out_sym int64 [k], out_cnt int64 [k]) -> number written: the k most frequent
 * BWT codes in [sp, ep) (sentinel excluded), order (count desc, symbol asc), as symbols. Exact best-first
 * descent of the wavelet matrix: a node's key is (size desc, lowest code asc) and frontier nodes are disjoint
 * code ranges, so leaves pop in exactly that order. */
static PyObject *FM_continuations(FM *f, PyObject *args) {
    long long sp, ep, k; PyObject *o_sym, *o_cnt; Py_buffer bs, bc;
    if (!PyArg_ParseTuple(args, "LLLOO", &sp, &ep, &k, &o_sym, &o_cnt)) return NULL;
    if (sp < 0 || ep > f->n_rows || sp > ep || k < 0) { PyErr_SetString(PyExc_ValueError, "bad interval or k"); return NULL; }
    if (PyObject_GetBuffer(o_sym, &bs, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (PyObject_GetBuffer(o_cnt, &bc, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) { PyBuffer_Release(&bs); return NULL; }
    if (bs.len < (Py_ssize_t)(k * 8) || bc.len < (Py_ssize_t)(k * 8)) {
        PyBuffer_Release(&bs); PyBuffer_Release(&bc);
        PyErr_SetString(PyExc_ValueError, "output buffers too small"); return NULL;
    }
    int64_t *osym = (int64_t *)bs.buf, *ocnt = (int64_t *)bc.buf, got = 0, hn = 0, cap = 0;
    node_t *h = NULL; int oom = 0;
    Py_BEGIN_ALLOW_THREADS
    if (sp < ep && k > 0) {
        node_t root = {sp, ep, 0, 0};
        if (heap_push(&h, &hn, &cap, root) < 0) oom = 1;
        while (!oom && hn > 0 && got < k) {
            node_t v = heap_pop(h, &hn);
            if (v.level == f->L) {
                int64_t c = v.lo;
                if (c >= 1 && c <= f->n_symbols) { osym[got] = f->symbols[c - 1]; ocnt[got] = v.ep - v.sp; got++; }
                continue;
            }
            const uint64_t *b = f->bits + v.level * f->W;
            const uint32_t *kp = f->ckpt + v.level * (f->NB + 1);
            int64_t rs = rank1(b, kp, f->occ_shift, v.sp), re = rank1(b, kp, f->occ_shift, v.ep);
            node_t z = {v.sp - rs, v.ep - re, v.lo, v.level + 1};
            node_t o = {f->zeros[v.level] + rs, f->zeros[v.level] + re,
                        v.lo | ((int64_t)1 << (f->L - 1 - v.level)), v.level + 1};
            if (z.sp < z.ep && heap_push(&h, &hn, &cap, z) < 0) oom = 1;
            if (!oom && o.sp < o.ep && heap_push(&h, &hn, &cap, o) < 0) oom = 1;
        }
    }
    Py_END_ALLOW_THREADS
    free(h);
    PyBuffer_Release(&bs); PyBuffer_Release(&bc);
    if (oom) return PyErr_NoMemory();
    return PyLong_FromLongLong(got);
}

/* longest_suffix(pattern) -> (length, sp, ep): binary search on the suffix length (occurrence is monotone:
 * a suffix of an occurring string occurs). Each probe is one left-to-right backward search. */
static PyObject *FM_longest_suffix(FM *f, PyObject *pat) {
    PyObject *seq = PySequence_Fast(pat, "pattern must be a sequence of ints");
    if (!seq) return NULL;
    Py_ssize_t m = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    int64_t *codes = (int64_t *)malloc((size_t)(m ? m : 1) * sizeof(int64_t));
    if (!codes) { Py_DECREF(seq); return PyErr_NoMemory(); }
    for (Py_ssize_t j = 0; j < m; j++) {
        long long s = PyLong_AsLongLong(items[j]);
        if (s == -1 && PyErr_Occurred()) { free(codes); Py_DECREF(seq); return NULL; }
        codes[j] = code_of(f, s);
    }
    Py_DECREF(seq);
    int64_t lo = 0, hi = m, bsp = 0, bep = f->n_rows; /* suffix of length lo occurs; bsp/bep its interval */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo + 1) / 2, sp = 0, ep = f->n_rows;
        for (int64_t j = m - mid; j < m && sp < ep; j++) {
            if (codes[j] < 0) { sp = ep = 0; break; }
            step(f, codes[j], &sp, &ep);
        }
        if (sp < ep) { lo = mid; bsp = sp; bep = ep; } else hi = mid - 1;
    }
    free(codes);
    return Py_BuildValue("LLL", (long long)lo, (long long)bsp, (long long)bep);
}

static void FM_dealloc(FM *f) {
    for (int i = 0; i < f->nbufs; i++) PyBuffer_Release(&f->bufs[i]);
    Py_TYPE(f)->tp_free((PyObject *)f);
}

static int get(FM *f, PyObject *o, Py_ssize_t itemsize, Py_ssize_t n_items, const char *name, const void **p) {
    Py_buffer *b = &f->bufs[f->nbufs];
    if (PyObject_GetBuffer(o, b, PyBUF_C_CONTIGUOUS) < 0) return -1;
    f->nbufs++;
    if (b->len != itemsize * n_items) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd bytes, got %zd", name, itemsize * n_items, b->len);
        return -1;
    }
    *p = b->buf;
    return 0;
}

static int FM_init(FM *f, PyObject *args, PyObject *kw) {
    PyObject *o[9];
    long long n_rows, L, occ_rate, sa_rate, n_symbols, n_samples;
    if (f->nbufs) { PyErr_SetString(PyExc_RuntimeError, "FM is already initialised"); return -1; }
    if (!PyArg_ParseTuple(args, "OOOOOOOOOLLLLLL", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &o[8],
                          &n_rows, &L, &occ_rate, &sa_rate, &n_symbols, &n_samples)) return -1;
    int sh = 0;
    while (sh < 40 && (1LL << sh) < occ_rate) sh++;
    if (occ_rate < 64 || (1LL << sh) != occ_rate || n_rows < 1 || L < 1 || L > 33 || sa_rate < 1 || n_symbols < 0) {
        PyErr_SetString(PyExc_ValueError, "bad FM parameters"); return -1;
    }
    f->n_rows = n_rows; f->L = L; f->occ_shift = sh; f->sa_rate = sa_rate;
    f->n_symbols = n_symbols; f->n_samples = n_samples;
    f->W = n_rows / 64 + 1; f->NB = n_rows >> sh;
    if ((n_symbols + 1) > (1LL << L)) { PyErr_SetString(PyExc_ValueError, "too few wavelet levels"); return -1; }
    if (get(f, o[0], 8, L * f->W, "bits", (const void **)&f->bits) < 0 ||
        get(f, o[1], 4, L * (f->NB + 1), "ckpt", (const void **)&f->ckpt) < 0 ||
        get(f, o[2], 8, L, "zeros", (const void **)&f->zeros) < 0 ||
        get(f, o[3], 8, n_symbols + 1, "sym_start", (const void **)&f->sym_start) < 0 ||
        get(f, o[4], 8, n_symbols + 2, "C", (const void **)&f->C) < 0 ||
        get(f, o[5], 4, n_symbols, "symbols", (const void **)&f->symbols) < 0 ||
        get(f, o[6], 8, f->W, "mark_bits", (const void **)&f->mbits) < 0 ||
        get(f, o[7], 4, f->NB + 1, "mark_ckpt", (const void **)&f->mckpt) < 0 ||
        get(f, o[8], 4, n_samples, "samples", (const void **)&f->samples) < 0) return -1;
    return 0;
}

static PyMethodDef FM_methods[] = {
    {"interval", (PyCFunction)FM_interval, METH_O, "interval(pattern) -> (sp, ep)"},
    {"count", (PyCFunction)FM_count, METH_O, "count(pattern) -> occurrences"},
    {"extend", (PyCFunction)FM_extend, METH_VARARGS, "extend(sp, ep, symbol) -> interval of pattern + [symbol]"},
    {"locate", (PyCFunction)FM_locate, METH_VARARGS, "locate(sp, ep, out) -> n (reversed-text suffix starts)"},
    {"continuations", (PyCFunction)FM_continuations, METH_VARARGS, "continuations(sp, ep, k, out_sym, out_cnt) -> n"},
    {"longest_suffix", (PyCFunction)FM_longest_suffix, METH_O, "longest_suffix(pattern) -> (length, sp, ep)"},
    {NULL, NULL, 0, NULL}};

static PyTypeObject FMType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kernels._fm.FM",
    .tp_basicsize = sizeof(FM),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "FM-index query object over wavelet-matrix arrays (holds buffer views; see kernels/fm_index.py)",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)FM_init,
    .tp_dealloc = (destructor)FM_dealloc,
    .tp_methods = FM_methods,
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_fm", "FM-index (wavelet matrix) query kernels (see kernels/fm_index.py).", -1, NULL,
};

PyMODINIT_FUNC PyInit__fm(void) {
    if (PyType_Ready(&FMType) < 0) return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (!m) return NULL;
    Py_INCREF(&FMType);
    if (PyModule_AddObject(m, "FM", (PyObject *)&FMType) < 0) { Py_DECREF(&FMType); Py_DECREF(m); return NULL; }
    return m;
}
