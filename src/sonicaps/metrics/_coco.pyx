# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""BLEU, CIDEr-D and ROUGE-L in C, with the reference implementation's arithmetic.

pycocoevalcap computes these in Python loops over dictionaries; the order of its floating
point operations (the order its dictionaries iterate in, where it sums) decides the last
bits of the scores, so this module repeats that order: n-grams are kept in the order a
sentence first shows them (pycocoevalcap's precook), and every sum runs as the reference's
does. Pure-Python twins of each function (ngrams.py, bleu.py, cider.py, rouge.py) give the
same numbers where the extension is not built; tests compare both with pycocoevalcap.
Written by hand because no library reproduces these definitions to the bit.

Sentences of a corpus are numbered candidates first (0 .. items - 1), then the references
item by item; ref_off[i]:ref_off[i + 1] are item i's references among the references.
"""

from cpython cimport array
from libc.math cimport exp, pow, sqrt
from libc.stdlib cimport calloc

import array

include "_bytemap.pxi"

# The reference's guards against division by zero (BleuScorer: tiny, small).
cdef double TINY = 1e-15
cdef double SMALL = 1e-9
# np.e, as pycocoevalcap's CIDEr-D raises it.
cdef double E = 2.718281828459045


cdef inline uint64_t _mix(uint64_t h, uint64_t x) noexcept:
    h ^= x + <uint64_t>0x9E3779B97F4A7C15 + (h << 6) + (h >> 2)
    return h * <uint64_t>0xFF51AFD7ED558CCD


cdef class Ngrams:
    """Every sentence's distinct 1..n-grams, in the order the sentence first shows them
    (by length, then position: pycocoevalcap's precook), as corpus-wide n-gram ids with
    their counts. Words are split as str.split() splits them."""

    cdef readonly Py_ssize_t n, n_sentences, n_grams
    cdef int64_t *off  # sentence s: entries off[s]:off[s + 1]
    cdef int32_t *gram
    cdef int32_t *count
    cdef signed char *order  # per n-gram id: its length - 1
    cdef int32_t *length  # per sentence: words

    def __dealloc__(self):
        free(self.off)
        free(self.gram)
        free(self.count)
        free(self.order)
        free(self.length)


cdef class Words:
    """Sentences as word ids, split two ways: as str.split() splits (BLEU, CIDEr-D: any
    whitespace) and as str.split(" ") (ROUGE-L: single spaces, so "" is one empty word)."""

    cdef ByteMap map
    cdef readonly Py_ssize_t n_sentences
    cdef int64_t *off  # str.split() words of sentence s: ids[off[s]:off[s + 1]]
    cdef int32_t *ids
    cdef int64_t *space_off  # str.split(" ") words: space_ids[space_off[s]:space_off[s + 1]]
    cdef int32_t *space_ids

    def __cinit__(self):
        bm_init(&self.map)

    def __dealloc__(self):
        bm_free(&self.map)
        free(self.off)
        free(self.ids)
        free(self.space_off)
        free(self.space_ids)


cdef inline bint _is_space(unsigned char c) noexcept nogil:
    """str.isspace() for an ASCII character."""
    return c == 32 or 9 <= c <= 13 or 28 <= c <= 31


def words(list sentences):
    """Words of these sentences (strings)."""
    cdef Words w = Words()
    cdef Py_ssize_t n_sent = len(sentences), s, i, a, n, cap = 0, cap_space = 0, total = 0, total_space = 0
    cdef const unsigned char *p
    cdef object text, word
    w.n_sentences = n_sent
    w.off = <int64_t *>malloc((n_sent + 1) * sizeof(int64_t))
    w.space_off = <int64_t *>malloc((n_sent + 1) * sizeof(int64_t))
    if w.off == NULL or w.space_off == NULL:
        raise MemoryError()
    for s in range(n_sent):
        text = sentences[s]
        if not isinstance(text, str):
            raise TypeError(f"sentence {s} is {type(text).__name__}, not a string")
        w.off[s], w.space_off[s] = total, total_space
        n = len(text)
        w.ids = <int32_t *>_grow(w.ids, &cap, total + n // 2 + 1, sizeof(int32_t))
        w.space_ids = <int32_t *>_grow(w.space_ids, &cap_space, total_space + n + 1, sizeof(int32_t))
        if PyUnicode_IS_ASCII(text):
            p = <const unsigned char *>PyUnicode_DATA(text)
            a = 0  # split(" "): every single space ends a word, empty ones included
            for i in range(n + 1):
                if i == n or p[i] == 32:
                    w.space_ids[total_space] = bm_intern(&w.map, <const char *>p + a, i - a)
                    total_space += 1
                    a = i + 1
            a = -1  # split(): runs of non-whitespace
            for i in range(n + 1):
                if i == n or _is_space(p[i]):
                    if a >= 0:
                        w.ids[total] = bm_intern(&w.map, <const char *>p + a, i - a)
                        total += 1
                        a = -1
                elif a < 0:
                    a = i
        else:
            toks = text.split(" ")
            w.space_ids = <int32_t *>_grow(w.space_ids, &cap_space, total_space + len(toks), sizeof(int32_t))
            for word in toks:
                w.space_ids[total_space] = bm_intern_str(&w.map, word)
                total_space += 1
            toks = text.split()
            w.ids = <int32_t *>_grow(w.ids, &cap, total + len(toks), sizeof(int32_t))
            for word in toks:
                w.ids[total] = bm_intern_str(&w.map, word)
                total += 1
    w.off[n_sent], w.space_off[n_sent] = total, total_space
    if w.ids == NULL:
        w.ids = <int32_t *>malloc(sizeof(int32_t))
        w.space_ids = <int32_t *>malloc(sizeof(int32_t))
    return w


def ngrams(Words wd, int n):
    """Ngrams of the sentences' str.split() words, 1..n-grams."""
    cdef Ngrams t = Ngrams()
    cdef Py_ssize_t n_sent = wd.n_sentences, s, i, k, j, total = wd.off[wd.n_sentences], cap_ent = 0
    cdef Py_ssize_t cap_grams = 0, slots, mask, slot, n_grams = 0, n_ent = 0, w0, wn
    cdef const int32_t *words = wd.ids
    cdef const int64_t *word_off = wd.off
    cdef int32_t *table = NULL  # open addressing: slot -> n-gram id, -1 free
    cdef int64_t *gram_start = NULL  # per n-gram id: where its words are in `words`
    cdef uint64_t *gram_hash = NULL
    cdef int32_t *seen = NULL  # per n-gram id: last sentence that had it, + 1
    cdef int64_t *where = NULL  # per n-gram id: its entry in that sentence
    cdef uint64_t h
    cdef int32_t g
    if n < 1:
        raise ValueError("n must be at least 1")
    t.n, t.n_sentences = n, n_sent
    try:
        t.length = <int32_t *>malloc((n_sent + 1) * sizeof(int32_t))
        t.off = <int64_t *>malloc((n_sent + 1) * sizeof(int64_t))
        if t.length == NULL or t.off == NULL:
            raise MemoryError()
        for s in range(n_sent):
            t.length[s] = <int32_t>(word_off[s + 1] - word_off[s])
        slots = 1024
        while slots < 2 * n * total + 2:
            slots *= 2
        mask = slots - 1
        table = <int32_t *>malloc(slots * sizeof(int32_t))
        if table == NULL:
            raise MemoryError()
        memset(table, 0xFF, slots * sizeof(int32_t))
        for s in range(n_sent):
            t.off[s] = n_ent
            w0, wn = word_off[s], word_off[s + 1]
            for k in range(1, n + 1):
                for i in range(w0, wn - k + 1):
                    h = <uint64_t>k
                    for j in range(k):
                        h = _mix(h, <uint64_t>words[i + j])
                    slot = <Py_ssize_t>(h & mask)
                    while True:
                        g = table[slot]
                        if g < 0:
                            g = <int32_t>n_grams
                            if n_grams == cap_grams:
                                gram_start = <int64_t *>_grow(gram_start, &cap_grams, n_grams + 1, sizeof(int64_t))
                                j = cap_grams
                                gram_hash = <uint64_t *>_resize(gram_hash, j * sizeof(uint64_t))
                                t.order = <signed char *>_resize(t.order, j * sizeof(signed char))
                                seen = <int32_t *>_resize(seen, j * sizeof(int32_t))
                                where = <int64_t *>_resize(where, j * sizeof(int64_t))
                            gram_start[g], gram_hash[g], t.order[g], seen[g] = i, h, k - 1, 0
                            table[slot] = g
                            n_grams += 1
                            break
                        if (gram_hash[g] == h and t.order[g] == k - 1
                                and memcmp(&words[gram_start[g]], &words[i], k * sizeof(int32_t)) == 0):
                            break
                        slot = (slot + 1) & mask
                    if seen[g] == s + 1:
                        t.count[where[g]] += 1
                    else:
                        if n_ent == cap_ent:
                            t.gram = <int32_t *>_grow(t.gram, &cap_ent, n_ent + 1, sizeof(int32_t))
                            t.count = <int32_t *>_resize(t.count, cap_ent * sizeof(int32_t))
                        seen[g], where[g] = s + 1, n_ent
                        t.gram[n_ent], t.count[n_ent] = g, 1
                        n_ent += 1
        t.off[n_sent] = n_ent
        t.n_grams = n_grams
        if t.gram == NULL:  # an empty corpus: keep the pointers valid
            t.gram = <int32_t *>malloc(sizeof(int32_t))
            t.count = <int32_t *>malloc(sizeof(int32_t))
        if t.order == NULL:
            t.order = <signed char *>malloc(1)
    finally:
        free(table)
        free(gram_start)
        free(gram_hash)
        free(seen)
        free(where)
    return t


cdef void _check_layout(Ngrams t, Py_ssize_t items, const int64_t[::1] ref_off) except *:
    if ref_off.shape[0] != items + 1 or ref_off[0] != 0 or items + ref_off[items] != t.n_sentences:
        raise ValueError("ref_off does not fit the sentences")
    for i in range(items):
        if ref_off[i + 1] <= ref_off[i]:
            raise ValueError(f"item {i} has no references")


def bleu(Ngrams t, Py_ssize_t items, const int64_t[::1] ref_off, int n, double[:, ::1] per_item):
    """BleuScorer.compute_score(option="closest") for 1..n: fills per_item (n x items) and
    returns the corpus scores."""
    cdef Py_ssize_t i, r, e, s
    cdef int k, testlen, l, diff, best_diff, reflen
    cdef int64_t total_testlen = 0, total_reflen = 0
    cdef int64_t *correct = NULL
    cdef int64_t *guess = NULL
    cdef int64_t *total_correct = NULL
    cdef int64_t *total_guess = NULL
    cdef int32_t *maxc = NULL
    cdef double score, ratio, penalty
    if n < 1 or n > t.n:
        raise ValueError(f"BLEU-{n} needs {n}-grams; the table holds 1..{t.n}")
    _check_layout(t, items, ref_off)
    if per_item.shape[0] != n or per_item.shape[1] != items:
        raise ValueError("per_item must be n x items")
    try:
        correct = <int64_t *>calloc(n, sizeof(int64_t))
        guess = <int64_t *>calloc(n, sizeof(int64_t))
        total_correct = <int64_t *>calloc(n, sizeof(int64_t))
        total_guess = <int64_t *>calloc(n, sizeof(int64_t))
        maxc = <int32_t *>calloc(t.n_grams + 1, sizeof(int32_t))
        if correct == NULL or guess == NULL or total_correct == NULL or total_guess == NULL or maxc == NULL:
            raise MemoryError()
        for i in range(items):
            testlen = t.length[i]
            # The closest reference length, ties to the shorter.
            best_diff, reflen = -1, 0
            for r in range(ref_off[i], ref_off[i + 1]):
                s = items + r
                l = t.length[s]
                diff = l - testlen if l >= testlen else testlen - l
                if best_diff < 0 or diff < best_diff or (diff == best_diff and l < reflen):
                    best_diff, reflen = diff, l
                for e in range(t.off[s], t.off[s + 1]):
                    if t.count[e] > maxc[t.gram[e]]:
                        maxc[t.gram[e]] = t.count[e]
            for k in range(n):
                correct[k] = 0
                guess[k] = testlen - k if testlen - k > 0 else 0
            for e in range(t.off[i], t.off[i + 1]):
                k = t.order[t.gram[e]]
                if k < n:
                    correct[k] += t.count[e] if t.count[e] < maxc[t.gram[e]] else maxc[t.gram[e]]
            for r in range(ref_off[i], ref_off[i + 1]):
                s = items + r
                for e in range(t.off[s], t.off[s + 1]):
                    maxc[t.gram[e]] = 0
            score = 1.0
            for k in range(n):
                score *= (<double>correct[k] + TINY) / (<double>guess[k] + SMALL)
                per_item[k, i] = pow(score, 1.0 / (k + 1))
                total_correct[k] += correct[k]
                total_guess[k] += guess[k]
            ratio = (<double>testlen + TINY) / (<double>reflen + SMALL)
            if ratio < 1:
                penalty = exp(1 - 1 / ratio)
                for k in range(n):
                    per_item[k, i] *= penalty
            total_testlen += testlen
            total_reflen += reflen
        corpus = []
        score = 1.0
        for k in range(n):
            score *= (<double>total_correct[k] + TINY) / (<double>total_guess[k] + SMALL)
            corpus.append(pow(score, 1.0 / (k + 1)))
        ratio = (<double>total_testlen + TINY) / (<double>total_reflen + SMALL)
        if ratio < 1:
            penalty = exp(1 - 1 / ratio)
            corpus = [x * penalty for x in corpus]
        return corpus
    finally:
        free(correct)
        free(guess)
        free(total_correct)
        free(total_guess)
        free(maxc)


cdef void _vector(Ngrams t, Py_ssize_t s, int n, const int32_t *df, const double *log_df, double ref_len,
                  double *weight, double *norm, int *bigrams) noexcept:
    """CiderScorer's counts2vec for sentence s: each n-gram's tf-idf weight into weight[id]
    (in entry order), the norm per length, and the number of bigrams."""
    cdef Py_ssize_t e
    cdef int k
    cdef int32_t g
    cdef double w
    for k in range(n):
        norm[k] = 0.0
    bigrams[0] = 0
    for e in range(t.off[s], t.off[s + 1]):
        g = t.gram[e]
        k = t.order[g]
        if k >= n:
            continue
        w = <double>t.count[e] * (ref_len - log_df[df[g]])
        weight[g] = w
        norm[k] += pow(w, 2.0)
        if k == 1:
            bigrams[0] += t.count[e]
    for k in range(n):
        norm[k] = sqrt(norm[k])


def doc_freq(Ngrams t, Py_ssize_t items, const int64_t[::1] ref_off, int n, int32_t[::1] df):
    """CiderScorer.compute_doc_freq: per n-gram id (of 1..n-grams), the number of items whose
    references (taken together) contain it."""
    cdef Py_ssize_t i, r, e, s
    cdef int32_t g
    cdef int32_t *stamp = NULL
    _check_layout(t, items, ref_off)
    if df.shape[0] != t.n_grams:
        raise ValueError("df must hold one count per n-gram")
    stamp = <int32_t *>calloc(t.n_grams + 1, sizeof(int32_t))
    if stamp == NULL:
        raise MemoryError()
    try:
        for g in range(t.n_grams):
            df[g] = 0
        for i in range(items):
            for r in range(ref_off[i], ref_off[i + 1]):
                s = items + r
                for e in range(t.off[s], t.off[s + 1]):
                    g = t.gram[e]
                    if stamp[g] != i + 1 and t.order[g] < n:
                        stamp[g] = i + 1
                        df[g] += 1
    finally:
        free(stamp)


def cider_d(Ngrams t, Py_ssize_t items, const int64_t[::1] ref_off, int n, double sigma, double ref_len,
            const int32_t[::1] df, const double[::1] log_df, double[::1] out):
    """CiderScorer.compute_cider (CIDEr-D) for n-grams 1..n: each item's score into out.
    df: doc_freq's counts; ref_len is np.log(items) and log_df[d] np.log(max(1, d)), from
    numpy as the reference takes them (numpy's log may round differently from the C library's)."""
    cdef Py_ssize_t i, r, e, s
    cdef int k, bigrams_c, bigrams_r
    cdef int32_t g
    cdef double *cand_w = NULL
    cdef double *ref_w = NULL
    cdef double *norm_c = NULL
    cdef double *norm_r = NULL
    cdef double *val = NULL
    cdef double *score = NULL
    cdef double delta, penalty, vh, vr, mean
    if n < 1 or n > t.n or n >= 8:  # numpy's mean of 8 or more values sums pairwise
        raise ValueError(f"CIDEr-D over 1..{n}-grams: n must be 1..{min(t.n, 7)}")
    _check_layout(t, items, ref_off)
    if out.shape[0] != items or df.shape[0] != t.n_grams:
        raise ValueError("out must hold one score per item, df one count per n-gram")
    for g in range(t.n_grams):
        if df[g] < 0 or df[g] >= log_df.shape[0]:
            raise ValueError(f"log_df has no entry for a document frequency of {df[g]}")
    try:
        cand_w = <double *>calloc(t.n_grams + 1, sizeof(double))
        ref_w = <double *>calloc(t.n_grams + 1, sizeof(double))
        norm_c = <double *>malloc(4 * n * sizeof(double))
        if cand_w == NULL or ref_w == NULL or norm_c == NULL:
            raise MemoryError()
        norm_r, val, score = norm_c + n, norm_c + 2 * n, norm_c + 3 * n
        for i in range(items):
            _vector(t, i, n, &df[0], &log_df[0], ref_len, cand_w, norm_c, &bigrams_c)
            for k in range(n):
                score[k] = 0.0
            for r in range(ref_off[i], ref_off[i + 1]):
                s = items + r
                _vector(t, s, n, &df[0], &log_df[0], ref_len, ref_w, norm_r, &bigrams_r)
                delta = <double>(bigrams_c - bigrams_r)
                penalty = pow(E, -pow(delta, 2.0) / (2 * pow(sigma, 2.0)))
                for k in range(n):
                    val[k] = 0.0
                # The candidate's n-grams, in its order; the reference's weight is 0 where it lacks one.
                for e in range(t.off[i], t.off[i + 1]):
                    g = t.gram[e]
                    k = t.order[g]
                    if k < n:
                        vh, vr = cand_w[g], ref_w[g]
                        val[k] += (vr if vr < vh else vh) * vr
                for k in range(n):
                    if norm_c[k] != 0 and norm_r[k] != 0:
                        val[k] /= norm_c[k] * norm_r[k]
                    val[k] *= penalty
                    score[k] += val[k]
                for e in range(t.off[s], t.off[s + 1]):
                    ref_w[t.gram[e]] = 0.0
            mean = 0.0
            for k in range(n):  # np.mean of fewer than 8 values: a running sum
                mean += score[k]
            mean /= n
            mean /= ref_off[i + 1] - ref_off[i]
            mean *= 10.0
            out[i] = mean
    finally:
        free(cand_w)
        free(ref_w)
        free(norm_c)


def rouge_l(Words wd, Py_ssize_t items, const int64_t[::1] ref_off, double beta, double[::1] out):
    """Rouge.calc_score for each item, on the sentences' str.split(" ") words: into out."""
    cdef Py_ssize_t i, r, s, a, b, n_c, n_r, cap_row = 0
    cdef const int32_t *cand
    cdef const int32_t *ref
    cdef int *row = NULL
    cdef int lcs, diag, up
    cdef double prec, rec, prec_max, rec_max, beta2 = pow(beta, 2.0)
    if ref_off.shape[0] != items + 1 or ref_off[0] != 0 or items + ref_off[items] != wd.n_sentences:
        raise ValueError("ref_off does not fit the sentences")
    if out.shape[0] != items:
        raise ValueError("out must hold one score per item")
    try:
        for i in range(items):
            cand, n_c = wd.space_ids + wd.space_off[i], wd.space_off[i + 1] - wd.space_off[i]
            if ref_off[i + 1] <= ref_off[i]:
                raise ValueError(f"item {i} has no references")
            prec_max = rec_max = 0.0
            row = <int *>_grow(row, &cap_row, n_c + 1, sizeof(int))
            for r in range(ref_off[i], ref_off[i + 1]):
                s = items + r
                ref, n_r = wd.space_ids + wd.space_off[s], wd.space_off[s + 1] - wd.space_off[s]
                # Longest common subsequence, one row of the table at a time.
                for a in range(n_c + 1):
                    row[a] = 0
                for b in range(n_r):
                    diag = 0
                    for a in range(n_c):
                        up = row[a + 1]
                        if ref[b] == cand[a]:
                            row[a + 1] = diag + 1
                        elif row[a] > up:
                            row[a + 1] = row[a]
                        diag = up
                lcs = row[n_c]
                prec = lcs / <double>n_c
                rec = lcs / <double>n_r
                if prec > prec_max:
                    prec_max = prec
                if rec > rec_max:
                    rec_max = rec
            if prec_max != 0 and rec_max != 0:
                out[i] = ((1 + beta2) * prec_max * rec_max) / (rec_max + beta2 * prec_max)
            else:
                out[i] = 0.0
    finally:
        free(row)


# --- PTB tokenization: tokenizer.tokenize's loop over captions -----------------------------

cdef extern from "Python.h":
    object PyUnicode_DecodeASCII(const char *s, Py_ssize_t size, const char *errors)

# Words the lexer splits (assimilations): never a single WORD token.
cdef tuple _ASSIMILATIONS = (b"cannot", b"gonna", b"gotta", b"lemme", b"gimme", b"wanna")


cdef inline bint _letter(unsigned char c) noexcept nogil:
    return 65 <= c <= 90 or 97 <= c <= 122


cdef inline bint _digit(unsigned char c) noexcept nogil:
    return 48 <= c <= 57


cdef bint _lexed_whole(const unsigned char *p, Py_ssize_t n) noexcept nogil:
    """tokenizer._SCAN_WHOLE.search on an ASCII caption: a token may span a space, a space
    runs on into a tab, or the lexer ends the line early."""
    cdef Py_ssize_t i
    cdef unsigned char c
    for i in range(n):
        c = p[i]
        if c == 60 or c == 13 or c == 11 or c == 12:  # < \r \x0b \x0c
            return True
        if (_digit(c) or c == 41) and i + 2 < n and p[i + 1] == 32 and _digit(p[i + 2]):
            return True
        if c == 46 and i + 2 < n and p[i + 1] == 32 and p[i + 2] == 46:
            return True
        if c == 9 and i > 0 and p[i - 1] == 32:
            return True
    return False


cdef Py_ssize_t _simple(const unsigned char *p, Py_ssize_t n) noexcept:
    """The length of a piece's word when the piece is tokenizer._SIMPLE's WORD token that
    needs no lookup: ASCII letters, maybe one final , ; : ! or ? (dropped), and not an
    assimilation. 0 otherwise (a final period may be an abbreviation's: the memo decides)."""
    cdef Py_ssize_t i, m = n
    cdef bytes low
    if n == 0:
        return 0
    if p[n - 1] in b",;:!?":
        m = n - 1
    if m == 0:
        return 0
    for i in range(m):
        if not _letter(p[i]):
            return 0
    if 5 <= m <= 6:
        low = bytes(p[:m]).lower()
        if low in _ASSIMILATIONS:
            return 0
    return m


def ptb_tokenize(list texts, dict middle, dict last, middle_miss, last_miss, contextual, python_caption,
                 whole_caption):
    """tokenizer.tokenize after its newline replacement, for ASCII captions: each caption
    split at spaces, a piece's output a lower-cased word (the common case) or the memo's
    (middle: pieces followed by a space; last: the last piece + the character after it;
    middle_miss(piece) / last_miss(piece, following) fill them); whole_caption(i) lexes
    caption i whole when a piece's output is `contextual` or _lexed_whole says so.
    python_caption(i) does all of it for a caption that is not ASCII."""
    cdef Py_ssize_t n_texts = len(texts), i, j, k, a, n, m, cap = 0, length
    cdef const unsigned char *p
    cdef const unsigned char *q
    cdef char *buf = NULL
    cdef bint ok
    cdef object text, value, piece
    cdef str following
    out = []
    try:
        for i in range(n_texts):
            text = texts[i]
            if not PyUnicode_IS_ASCII(text):
                out.append(python_caption(i))
                continue
            p, n = <const unsigned char *>PyUnicode_DATA(text), len(text)
            if _lexed_whole(p, n):
                out.append(whole_caption(i))
                continue
            following = u"\n" if i + 1 < n_texts else u""
            buf = <char *>_grow(buf, &cap, n + 1, 1)
            length, a, ok = 0, 0, True
            for k in range(n + 1):
                if k < n and p[k] != 32:
                    continue
                m = _simple(p + a, k - a)
                if m:
                    if length:
                        buf[length] = 32
                        length += 1
                    for j in range(m):  # lower-cased (ASCII letters)
                        buf[length + j] = p[a + j] | 32
                    length += m
                else:
                    piece = text[a:k]
                    if k < n:
                        value = middle.get(piece)
                        if value is None:
                            value = middle_miss(piece)
                    else:
                        value = last.get(piece + following)
                        if value is None:
                            value = last_miss(piece, following)
                    if value is contextual or not PyUnicode_IS_ASCII(value):
                        ok = False
                        break
                    if len(value):
                        buf = <char *>_grow(buf, &cap, length + len(value) + n + 2, 1)
                        if length:
                            buf[length] = 32
                            length += 1
                        memcpy(buf + length, PyUnicode_DATA(value), len(value))
                        length += len(value)
                a = k + 1
            if ok:
                out.append(PyUnicode_DecodeASCII(buf, length, NULL))
            elif value is contextual:
                out.append(whole_caption(i))
            else:
                out.append(python_caption(i))
    finally:
        free(buf)
    return out
