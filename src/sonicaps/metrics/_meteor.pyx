# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""METEOR's per-pair work in C: paraphrase spotting, matching, the aligner's beam search,
the statistics and the score, for a whole block of SCORE lines in one call.

meteor.MeteorScorer prepares the corpus (words -> hashes, stems, synsets; the paraphrase
entries among its words as a trie) and keeps the readable Python path (_sentence, _align_python,
MeteorStats.score), which this module reproduces operation for operation, so the numbers are
bit-identical (tests/test_meteor.py compares every pair). Written by hand because no library
implements meteor-1.5.jar's Aligner with its quirks, and in Python the per-pair work was most
of the COCO suite's time. Word sets are 64-bit masks, so lines whose sentences all have at
most 64 words go through here; the caller scores the others in Python.
"""

from cpython cimport array
from libc.math cimport isnan, pow
from libc.stdint cimport uint16_t, uint32_t
from libc.stdlib cimport calloc, qsort
from libc.string cimport memchr

import array

include "_bytemap.pxi"

cdef enum:
    BEAM_SIZE = 40  # meteor.BEAM_SIZE
    MAX_WORDS = 64
    # Module ids, as in meteor.py.
    EXACT = 0
    STEM = 1
    SYNONYM = 2
    PARAPHRASE = 3
    # A statistics row (meteor.MeteorStats.row): lengths (2), function words (2), per-module
    # counts (test content, ref content, test function, ref function: 4 x 4), chunks, word matches (2).
    N_STATS = 23
    CHUNKS = 20


cdef struct Match:
    int rstart, rlen, tstart, tlen, module, gain, dist
    uint64_t rbits, tbits


cdef struct Path:
    int neg, chunks, dist, idx, last, node
    uint64_t tbits, rbits


cdef struct Node:
    int match, parent


cdef struct PhraseAt:  # a phrase of the table that is some entry's paraphrase, found in a sentence
    int target, pos


cdef struct PhraseFrom:  # an entry whose phrase starts in a sentence: its paraphrase, where, record
    int target, pos, length, record


cdef struct Hit:  # a paraphrase match between two sentences, in the jar's sort key order
    int src, src_len, record, dst, dst_len


cdef struct Tables:
    # Per word id.
    const uint32_t *hashes
    const uint32_t *stems
    const signed char *function
    const int64_t *syn_off
    const int64_t *syn
    # The trie of the corpus' paraphrase phrases; node 0 is the root.
    const int32_t *child_off
    const int32_t *child_word  # sorted within each node
    const int32_t *child_node
    const int32_t *ent_off
    const int32_t *ent_record
    const int32_t *ent_target  # the paraphrase's node
    const signed char *is_target
    const int32_t *depth
    # Score parameters: alpha, beta, gamma, delta, then the module weights.
    double params[8]


cdef inline uint64_t span(int start, int length) noexcept:
    if length >= 64:
        return <uint64_t>0xFFFFFFFFFFFFFFFF << start
    return ((<uint64_t>1 << length) - 1) << start


cdef inline Match make_match(int rstart, int rlen, int tstart, int tlen, int module) noexcept:
    cdef Match m
    m.rstart, m.rlen, m.tstart, m.tlen, m.module = rstart, rlen, tstart, tlen, module
    # The jar adds (int)(count * weight): weight 1 for exact, 0.5 for the other modules.
    m.gain = tlen + rlen if module == EXACT else tlen // 2 + rlen // 2
    m.dist = rstart - tstart if rstart >= tstart else tstart - rstart
    m.rbits, m.tbits = span(rstart, rlen), span(tstart, tlen)
    return m


cdef int hit_cmp(const void *a, const void *b) noexcept nogil:
    cdef const Hit *p = <const Hit *>a
    cdef const Hit *q = <const Hit *>b
    if p.src != q.src:
        return -1 if p.src < q.src else 1
    if p.src_len != q.src_len:
        return -1 if p.src_len < q.src_len else 1
    if p.record != q.record:
        return -1 if p.record < q.record else 1
    if p.dst != q.dst:
        return -1 if p.dst < q.dst else 1
    return -1 if p.dst_len < q.dst_len else (1 if p.dst_len > q.dst_len else 0)


cdef int from_cmp(const void *a, const void *b) noexcept nogil:
    cdef const PhraseFrom *p = <const PhraseFrom *>a
    cdef const PhraseFrom *q = <const PhraseFrom *>b
    return -1 if p.target < q.target else (1 if p.target > q.target else 0)


cdef int at_cmp(const void *a, const void *b) noexcept nogil:
    cdef const PhraseAt *p = <const PhraseAt *>a
    cdef const PhraseAt *q = <const PhraseAt *>b
    return -1 if p.target < q.target else (1 if p.target > q.target else 0)


cdef inline bint path_less(const Path *p, const Path *q) noexcept:
    """(score, chunks, distance) order, as the jar's PartialAlignment comparator."""
    if p.neg != q.neg:
        return p.neg < q.neg
    if p.chunks != q.chunks:
        return p.chunks < q.chunks
    return p.dist < q.dist


cdef void sort_paths(Path *paths, int n, Path *tmp) noexcept:
    """A stable sort, as Collections.sort: insertion sort on runs of 16, then merges through
    tmp (room for n paths). (libc's qsort allocated and copied on every call, most of the
    aligner's time.)"""
    cdef int lo, hi, i, j, width, a, b, k, mid
    cdef Path x
    cdef Path *src = paths
    cdef Path *dst = tmp
    for lo in range(0, n, 16):
        hi = min(lo + 16, n)
        for i in range(lo + 1, hi):
            x = paths[i]
            j = i - 1
            while j >= lo and path_less(&x, &paths[j]):
                paths[j + 1] = paths[j]
                j -= 1
            paths[j + 1] = x
    width = 16
    while width < n:
        for lo in range(0, n, 2 * width):
            mid, hi = min(lo + width, n), min(lo + 2 * width, n)
            a, b, k = lo, mid, lo
            while a < mid and b < hi:
                if path_less(&src[b], &src[a]):
                    dst[k] = src[b]
                    b += 1
                else:
                    dst[k] = src[a]
                    a += 1
                k += 1
            while a < mid:
                dst[k] = src[a]
                a += 1
                k += 1
            while b < hi:
                dst[k] = src[b]
                b += 1
                k += 1
        src, dst = dst, src
        width *= 2
    if src != paths:
        memcpy(paths, src, n * sizeof(Path))


cdef extern from *:
    int __builtin_ctzll(unsigned long long) nogil


cdef int find_child(const Tables *tb, int node, int word) noexcept:
    """The trie node after `node` on `word`, or -1."""
    cdef int lo = tb.child_off[node], hi = tb.child_off[node + 1], mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if tb.child_word[mid] < word:
            lo = mid + 1
        else:
            hi = mid
    if lo < tb.child_off[node + 1] and tb.child_word[lo] == word:
        return tb.child_node[lo]
    return -1


cdef class _Work:
    """Scratch memory of one call, freed with it."""

    cdef Match *matches
    cdef Py_ssize_t match_cap
    cdef Path *paths
    cdef Path *next_paths
    cdef Py_ssize_t path_cap
    cdef Node *nodes
    cdef Py_ssize_t node_cap
    cdef Hit *hits
    cdef Py_ssize_t hit_cap
    cdef PhraseFrom *pf
    cdef Py_ssize_t pf_cap
    cdef PhraseAt *pa
    cdef Py_ssize_t pa_cap
    cdef Py_ssize_t *pf_off
    cdef Py_ssize_t *pa_off
    cdef int64_t *syn_keys  # test_synsets' table (open addressing, -1 free)
    cdef uint64_t *syn_masks
    cdef Py_ssize_t syn_cap, syn_slots

    def __dealloc__(self):
        free(self.syn_keys)
        free(self.syn_masks)
        free(self.matches)
        free(self.paths)
        free(self.next_paths)
        free(self.nodes)
        free(self.hits)
        free(self.pf)
        free(self.pa)
        free(self.pf_off)
        free(self.pa_off)

    cdef void grow_paths(self, Py_ssize_t n) except *:
        cdef Py_ssize_t cap = self.path_cap
        self.paths = <Path *>_grow(self.paths, &cap, n, sizeof(Path))
        cap = self.path_cap
        self.next_paths = <Path *>_grow(self.next_paths, &cap, n, sizeof(Path))
        self.path_cap = cap


cdef void test_synsets(const Tables *tb, _Work w, const int32_t *tw, int n1) except *:
    """For the test sentence of a line: each synset of its words -> the mask of the words
    that have it, so a reference word's synonym matches are an OR of masks (instead of
    intersecting its synsets with each test word's)."""
    cdef Py_ssize_t total = 0, slots = 16, slot, k
    cdef int i
    cdef int64_t sid
    for i in range(n1):
        total += tb.syn_off[tw[i] + 1] - tb.syn_off[tw[i]]
    while slots < 2 * total:
        slots *= 2
    if slots > w.syn_cap:
        w.syn_keys = <int64_t *>_resize(w.syn_keys, slots * sizeof(int64_t))
        w.syn_masks = <uint64_t *>_resize(w.syn_masks, slots * sizeof(uint64_t))
        w.syn_cap = slots
    w.syn_slots = slots
    memset(w.syn_keys, 0xFF, slots * sizeof(int64_t))
    for i in range(n1):
        for k in range(tb.syn_off[tw[i]], tb.syn_off[tw[i] + 1]):
            sid = tb.syn[k]
            slot = <Py_ssize_t>((<uint64_t>sid * <uint64_t>0x9E3779B97F4A7C15) >> 40) & (slots - 1)
            while w.syn_keys[slot] != -1 and w.syn_keys[slot] != sid:
                slot = (slot + 1) & (slots - 1)
            if w.syn_keys[slot] == -1:
                w.syn_keys[slot], w.syn_masks[slot] = sid, 0
            w.syn_masks[slot] |= <uint64_t>1 << i


cdef inline uint64_t synset_mask(_Work w, int64_t sid) noexcept:
    """The test words that have this synset (test_synsets)."""
    cdef Py_ssize_t slot = <Py_ssize_t>((<uint64_t>sid * <uint64_t>0x9E3779B97F4A7C15) >> 40) & (w.syn_slots - 1)
    while w.syn_keys[slot] != -1:
        if w.syn_keys[slot] == sid:
            return w.syn_masks[slot]
        slot = (slot + 1) & (w.syn_slots - 1)
    return 0


cdef void find_phrases(const Tables *tb, _Work w, const int32_t *words, int n, Py_ssize_t *npf,
                       Py_ssize_t *npa) except *:
    """Every table phrase that starts in this sentence: the entries it is the phrase of
    (PhraseFrom) and, where it is some entry's paraphrase, its position (PhraseAt)."""
    cdef int i, end, node, e
    for i in range(n):
        node, end = 0, i
        while end < n:
            node = find_child(tb, node, words[end])
            if node < 0:
                break
            end += 1
            w.pf = <PhraseFrom *>_grow(w.pf, &w.pf_cap, npf[0] + tb.ent_off[node + 1] - tb.ent_off[node],
                                       sizeof(PhraseFrom))
            for e in range(tb.ent_off[node], tb.ent_off[node + 1]):
                w.pf[npf[0]].target = tb.ent_target[e]
                w.pf[npf[0]].pos = i
                w.pf[npf[0]].length = end - i
                w.pf[npf[0]].record = tb.ent_record[e]
                npf[0] += 1
            if tb.is_target[node]:
                w.pa = <PhraseAt *>_grow(w.pa, &w.pa_cap, npa[0] + 1, sizeof(PhraseAt))
                w.pa[npa[0]].target = node
                w.pa[npa[0]].pos = i
                npa[0] += 1


cdef Py_ssize_t paraphrase_hits(const Tables *tb, _Work w, Py_ssize_t src, Py_ssize_t dst,
                                Py_ssize_t nh) except -1:
    """Append meteor._paraphrase_hits(source, target) to w.hits from nh, sorted; the new count.
    Both sentences' phrase lists are sorted by paraphrase node, so they merge."""
    cdef Py_ssize_t a = w.pf_off[src], a1 = w.pf_off[src + 1], b = w.pa_off[dst], b1 = w.pa_off[dst + 1]
    cdef Py_ssize_t start = nh, b0, k
    cdef int g
    while a < a1 and b < b1:
        g = w.pf[a].target
        if g < w.pa[b].target:
            a += 1
        elif g > w.pa[b].target:
            b += 1
        else:
            b0 = b
            while b < b1 and w.pa[b].target == g:
                b += 1
            while a < a1 and w.pf[a].target == g:
                w.hits = <Hit *>_grow(w.hits, &w.hit_cap, nh + b - b0, sizeof(Hit))
                for k in range(b0, b):
                    w.hits[nh].src, w.hits[nh].src_len = w.pf[a].pos, w.pf[a].length
                    w.hits[nh].record = w.pf[a].record
                    w.hits[nh].dst, w.hits[nh].dst_len = w.pa[k].pos, tb.depth[g]
                    nh += 1
                a += 1
    if nh - start > 1:
        qsort(&w.hits[start], nh - start, sizeof(Hit), hit_cmp)
    return nh


cdef double meteor_score(const Tables *tb, const int *s) noexcept:
    """MeteorStats.score, operation for operation (so the doubles agree to the last bit)."""
    cdef double alpha = tb.params[0], beta = tb.params[1], gamma = tb.params[2], d = tb.params[3]
    cdef double test_len, ref_len, test_w = 0.0, ref_w = 0.0, precision, recall, f_mean, frag, score
    cdef int i, test_sum = 0, ref_sum = 0
    test_len = d * <double>(s[0] - s[2]) + (1.0 - d) * <double>s[2]
    ref_len = d * <double>(s[1] - s[3]) + (1.0 - d) * <double>s[3]
    for i in range(4):
        test_w += <double>s[4 + i] * tb.params[4 + i] * d
        ref_w += <double>s[8 + i] * tb.params[4 + i] * d
    for i in range(4):
        test_w += <double>s[12 + i] * tb.params[4 + i] * (1.0 - d)
        ref_w += <double>s[16 + i] * tb.params[4 + i] * (1.0 - d)
    # IEEE division gives what meteor._div gives for zero divisors.
    precision = test_w / test_len
    recall = ref_w / ref_len
    f_mean = 1.0 / ((1.0 - alpha) / precision + alpha / recall)
    for i in range(4):
        test_sum += s[4 + i] + s[12 + i]
        ref_sum += s[8 + i] + s[16 + i]
    if test_sum == s[0] and ref_sum == s[1] and s[CHUNKS] == 1:
        frag = 0.0
    else:
        frag = <double>s[CHUNKS] / (<double>(s[21] + s[22]) / 2.0)
    score = f_mean * (1.0 - gamma * pow(frag, beta))
    if isnan(score):
        return 0.0
    return 0.0 if 0.0 > score else score


cdef bint whole_match(const int *s) noexcept:
    cdef int i, test_sum = 0, ref_sum = 0
    for i in range(4):
        test_sum += s[4 + i] + s[12 + i]
        ref_sum += s[8 + i] + s[16 + i]
    return test_sum == s[0] and ref_sum == s[1] and s[CHUNKS] == 1


cdef void align(const Tables *tb, _Work w, const int32_t *tw, int n1, const int32_t *rw, int n2,
                Py_ssize_t t_sent, Py_ssize_t r_sent, int *out) except *:
    """MeteorScorer._align_python for one pair of sentences of at most 64 words each: the
    statistics row in out."""
    cdef uint32_t thash[MAX_WORDS]
    cdef uint32_t rhash[MAX_WORDS]
    cdef int cover1[MAX_WORDS]
    cdef int cover2[MAX_WORDS]
    cdef int fixed[MAX_WORDS]
    cdef int per_ref[MAX_WORDS]
    cdef int first[MAX_WORDS]
    cdef int chosen[MAX_WORDS]
    cdef int i, j, k, x, n, nm = 0
    cdef Py_ssize_t nh = 0, nh1
    cdef bint same = n1 == n2
    cdef uint64_t shared
    cdef Match *m
    cdef const Hit *h

    for i in range(n1):
        thash[i] = tb.hashes[tw[i]]
    for j in range(n2):
        rhash[j] = tb.hashes[rw[j]]
        if same and thash[j] != rhash[j]:
            same = False
    if not same:  # identical sentences need exact matches only (avoids beam search errors)
        nh1 = paraphrase_hits(tb, w, r_sent, t_sent, 0)  # reference phrases first
        nh = paraphrase_hits(tb, w, t_sent, r_sent, nh1)

    # Candidate matches in the order the jar's matchers add them, then bucketed by reference
    # start (the jar's per-position lists), keeping that order.
    w.matches = <Match *>_grow(w.matches, &w.match_cap, 2 * (3 * n1 * n2 + nh) + 1, sizeof(Match))
    cdef Match *ms = w.matches
    for j in range(n2):
        for i in range(n1):
            if thash[i] == rhash[j]:
                ms[nm] = make_match(j, 1, i, 1, EXACT)
                nm += 1
    if not same:
        for j in range(n2):
            for i in range(n1):
                if tb.stems[tw[i]] == tb.stems[rw[j]] and thash[i] != rhash[j]:
                    ms[nm] = make_match(j, 1, i, 1, STEM)
                    nm += 1
        for j in range(n2):  # test words sharing a synset with reference word j (test_synsets)
            shared = 0
            for k in range(tb.syn_off[rw[j]], tb.syn_off[rw[j] + 1]):
                shared |= synset_mask(w, tb.syn[k])
            while shared:
                i = __builtin_ctzll(shared)
                shared &= shared - 1
                if thash[i] != rhash[j]:
                    ms[nm] = make_match(j, 1, i, 1, SYNONYM)
                    nm += 1
        for k in range(nh):
            h = &w.hits[k]
            if k < nh1:  # a reference phrase (src) whose paraphrase is in the test (dst)
                ms[nm] = make_match(h.src, h.src_len, h.dst, h.dst_len, PARAPHRASE)
            else:
                ms[nm] = make_match(h.dst, h.dst_len, h.src, h.src_len, PARAPHRASE)
            nm += 1

    cdef Match *staged = ms + nm
    for j in range(n2):
        per_ref[j] = 0
        cover2[j] = 0
        fixed[j] = -1
    for i in range(n1):
        cover1[i] = 0
    for k in range(nm):
        per_ref[ms[k].rstart] += 1
        for x in range(ms[k].tstart, ms[k].tstart + ms[k].tlen):
            cover1[x] += 1
        for x in range(ms[k].rstart, ms[k].rstart + ms[k].rlen):
            cover2[x] += 1
    n = 0
    for j in range(n2):
        first[j] = n
        n += per_ref[j]
        per_ref[j] = 0
    for k in range(nm):
        j = ms[k].rstart
        staged[first[j] + per_ref[j]] = ms[k]
        per_ref[j] += 1

    # One-to-one matches that overlap nothing are certain.
    cdef uint64_t test_bits = 0, ref_bits = 0
    cdef bint ambiguous = False, ok
    for j in range(n2):
        if per_ref[j] == 1:
            m = &staged[first[j]]
            ok = True
            for x in range(m.rstart, m.rstart + m.rlen):
                ok = ok and cover2[x] == 1
            for x in range(m.tstart, m.tstart + m.tlen):
                ok = ok and cover1[x] == 1
            if ok:
                fixed[j] = first[j]
                test_bits |= m.tbits
                ref_bits |= m.rbits
        if per_ref[j] and fixed[j] == -1:
            ambiguous = True
    for j in range(n2):
        chosen[j] = fixed[j]
    if ambiguous:
        resolve(w, staged, first, per_ref, fixed, n2, test_bits, ref_bits, chosen)

    for k in range(N_STATS):
        out[k] = 0
    out[0], out[1] = n1, n2
    for i in range(n1):
        out[2] += tb.function[tw[i]]
    for j in range(n2):
        out[3] += tb.function[rw[j]]
    for j in range(n2):
        if chosen[j] != -1:
            m = &staged[chosen[j]]
            for x in range(m.tstart, m.tstart + m.tlen):
                out[(12 if tb.function[tw[x]] else 4) + m.module] += 1
            for x in range(m.rstart, m.rstart + m.rlen):
                out[(16 if tb.function[rw[x]] else 8) + m.module] += 1
    # Aligner.getCountAndChunks
    cdef int chunks = 0, idx = 0, last_end = -1, test_matches = 0, ref_matches = 0
    while idx < n2:
        if chosen[idx] == -1:
            if last_end != -1:
                chunks += 1
                last_end = -1
            idx += 1
        else:
            m = &staged[chosen[idx]]
            test_matches += m.tlen
            ref_matches += m.rlen
            if last_end != -1 and m.tstart != last_end:
                chunks += 1
            idx, last_end = m.rstart + m.rlen, m.tstart + m.tlen
    if last_end != -1:
        chunks += 1
    out[CHUNKS], out[21], out[22] = chunks, test_matches, ref_matches


cdef void resolve(_Work w, Match *staged, int *first, int *per_ref, int *fixed, int n2,
                  uint64_t test_bits, uint64_t ref_bits, int *chosen) except *:
    """Aligner.resolve: beam search over the ambiguous matches, left to right in the reference."""
    cdef int current, k, p, n_paths = 1, n_next, n_nodes = 0, last, most = 1
    cdef uint64_t bit
    cdef Path *paths
    cdef Path *nxt
    cdef Path *path
    cdef Match *m
    for current in range(n2):
        most = max(most, per_ref[current])
    w.grow_paths(BEAM_SIZE * (most + 1) + 1)
    paths, nxt = w.paths, w.next_paths
    paths[0].neg = paths[0].chunks = paths[0].dist = paths[0].idx = 0
    paths[0].last, paths[0].node = -1, -1
    paths[0].tbits, paths[0].rbits = test_bits, ref_bits
    for current in range(n2):
        if n_paths > 1:
            sort_paths(paths, n_paths, nxt)
            n_paths = min(n_paths, BEAM_SIZE)
        n_next = 0
        bit = <uint64_t>1 << current
        w.nodes = <Node *>_grow(w.nodes, &w.node_cap, n_nodes + n_paths * per_ref[current] + 1, sizeof(Node))
        for p in range(n_paths):
            path = &paths[p]
            if path.rbits & bit:
                if current < path.idx:
                    nxt[n_next] = path[0]  # inside a match
                    n_next += 1
                elif fixed[path.idx] != -1:
                    m = &staged[fixed[path.idx]]
                    path.neg -= m.gain
                    if path.last != -1 and m.tstart != path.last:
                        path.chunks += 1
                    path.idx, path.last = m.rstart + m.rlen, m.tstart + m.tlen
                    path.dist += m.dist
                    nxt[n_next] = path[0]
                    n_next += 1
            else:
                last = path.last
                for k in range(first[current], first[current] + per_ref[current]):
                    m = &staged[k]
                    if path.rbits & m.rbits or path.tbits & m.tbits:
                        continue
                    w.nodes[n_nodes].match, w.nodes[n_nodes].parent = k, path.node
                    nxt[n_next].neg = path.neg - m.gain
                    nxt[n_next].chunks = path.chunks + (1 if last != -1 and m.tstart != last else 0)
                    nxt[n_next].dist = path.dist
                    nxt[n_next].idx, nxt[n_next].last = m.rstart + m.rlen, m.tstart + m.tlen
                    nxt[n_next].tbits, nxt[n_next].rbits = path.tbits | m.tbits, path.rbits | m.rbits
                    nxt[n_next].node = n_nodes
                    n_nodes += 1
                    n_next += 1
                    path.dist += m.dist  # the jar adds the distance to the parent path
                if last != -1:
                    path.chunks += 1
                    path.last = -1
                path.idx += 1
                nxt[n_next] = path[0]
                n_next += 1
        if n_next:
            paths, nxt = nxt, paths
            n_paths = n_next
        else:
            n_paths = 1  # keep the best path as it was
    # Complete paths: close the open chunk, best first.
    if n_paths > 1:
        sort_paths(paths, n_paths, nxt)
        n_paths = min(n_paths, BEAM_SIZE)
    for p in range(n_paths):
        if paths[p].last != -1:
            paths[p].chunks += 1
    sort_paths(paths, n_paths, nxt)
    k = paths[0].node
    while k != -1:
        chosen[staged[w.nodes[k].match].rstart] = w.nodes[k].match
        k = w.nodes[k].parent
    w.paths, w.next_paths = paths, nxt


def score_lines(words, trie, tuple params, const int64_t[::1] sent_off, const int32_t[::1] sent_words,
                const int64_t[::1] line_off, const int64_t[::1] line_sent, int[:, ::1] best_stats,
                double[::1] best_scores, int[:, ::1] pair_stats=None, double[::1] pair_scores=None):
    """Score SCORE lines as MeteorScorer._best does: line l is sentence line_sent[line_off[l]]
    (the test) against sentences line_sent[line_off[l] + 1 : line_off[l + 1]] (the references).
    Sentence s is the word ids sent_words[sent_off[s]:sent_off[s + 1]].

    words: (hashes uint32, stem hashes uint32, function int8, syn_off int64, syn int64) per
    word id; trie: (child_off, child_word, child_node, ent_off, ent_record, ent_target,
    is_target, depth) (meteor.MeteorScorer._flat_trie); params: alpha, beta, gamma, delta and
    the four module weights. Fills best_stats (one statistics row per line) and best_scores;
    pair_stats/pair_scores, when given, get every reference's row and score. Returns the
    indices of the lines it left alone (a sentence longer than 64 words).
    """
    cdef const uint32_t[::1] hashes = words[0]
    cdef const uint32_t[::1] stems = words[1]
    cdef const signed char[::1] function = words[2]
    cdef const int64_t[::1] syn_off = words[3]
    cdef const int64_t[::1] syn = words[4]
    cdef const int32_t[::1] child_off = trie[0]
    cdef const int32_t[::1] child_word = trie[1]
    cdef const int32_t[::1] child_node = trie[2]
    cdef const int32_t[::1] ent_off = trie[3]
    cdef const int32_t[::1] ent_record = trie[4]
    cdef const int32_t[::1] ent_target = trie[5]
    cdef const signed char[::1] is_target = trie[6]
    cdef const int32_t[::1] depth = trie[7]
    cdef Py_ssize_t n_sent = sent_off.shape[0] - 1, n_lines = line_off.shape[0] - 1
    cdef Py_ssize_t s, l, k, t_sent, r_sent, npf = 0, npa = 0, pair, cap
    cdef int stats[N_STATS]
    cdef double score, best
    cdef int i
    cdef bint fits
    cdef Tables tb
    cdef _Work w = _Work()
    if len(params) != 8:
        raise ValueError("params: alpha, beta, gamma, delta and four module weights")
    if best_stats.shape[0] != n_lines or best_stats.shape[1] != N_STATS or best_scores.shape[0] != n_lines:
        raise ValueError("best_stats/best_scores do not fit the lines")
    for i in range(8):
        tb.params[i] = params[i]
    if syn_off.shape[0] != hashes.shape[0] + 1 or child_off.shape[0] < 2 or ent_off.shape[0] != child_off.shape[0]:
        raise ValueError("word or trie tables of inconsistent sizes")
    # (With bounds checks off, &x[0] of an empty table is its data pointer, never read.)
    tb.hashes, tb.stems, tb.function = &hashes[0], &stems[0], &function[0]
    tb.syn_off, tb.syn = &syn_off[0], &syn[0]
    tb.child_off, tb.child_word, tb.child_node = &child_off[0], &child_word[0], &child_node[0]
    tb.ent_off, tb.ent_record, tb.ent_target = &ent_off[0], &ent_record[0], &ent_target[0]
    tb.is_target, tb.depth = &is_target[0], &depth[0]

    # Every sentence's phrases, sorted by paraphrase node (for merging in paraphrase_hits).
    for k in range(sent_off[n_sent]):
        if sent_words[k] < 0 or sent_words[k] >= hashes.shape[0]:
            raise ValueError(f"word id {sent_words[k]} outside the word tables")
    cap = 0
    w.pf_off = <Py_ssize_t *>_grow(NULL, &cap, n_sent + 1, sizeof(Py_ssize_t))
    cap = 0
    w.pa_off = <Py_ssize_t *>_grow(NULL, &cap, n_sent + 1, sizeof(Py_ssize_t))
    for s in range(n_sent):
        w.pf_off[s], w.pa_off[s] = npf, npa
        find_phrases(&tb, w, &sent_words[sent_off[s]], <int>(sent_off[s + 1] - sent_off[s]), &npf, &npa)
        if npf - w.pf_off[s] > 1:
            qsort(&w.pf[w.pf_off[s]], npf - w.pf_off[s], sizeof(PhraseFrom), from_cmp)
        if npa - w.pa_off[s] > 1:
            qsort(&w.pa[w.pa_off[s]], npa - w.pa_off[s], sizeof(PhraseAt), at_cmp)
    w.pf_off[n_sent], w.pa_off[n_sent] = npf, npa

    skipped = []
    for l in range(n_lines):
        fits = line_off[l + 1] > line_off[l]
        for k in range(line_off[l], line_off[l + 1]):
            s = line_sent[k]
            if s < 0 or s >= n_sent:
                raise ValueError(f"sentence {s} outside the sentence table")
            fits = fits and sent_off[s + 1] - sent_off[s] <= MAX_WORDS
        if not fits:
            skipped.append(l)
            continue
        t_sent = line_sent[line_off[l]]
        test_synsets(&tb, w, &sent_words[sent_off[t_sent]], <int>(sent_off[t_sent + 1] - sent_off[t_sent]))
        best = -1.0
        for k in range(line_off[l] + 1, line_off[l + 1]):
            r_sent = line_sent[k]
            align(&tb, w, &sent_words[sent_off[t_sent]], <int>(sent_off[t_sent + 1] - sent_off[t_sent]),
                  &sent_words[sent_off[r_sent]], <int>(sent_off[r_sent + 1] - sent_off[r_sent]),
                  t_sent, r_sent, stats)
            score = meteor_score(&tb, stats)
            if pair_stats is not None:
                pair = k - l - 1  # the pair's index among all (line, reference) pairs
                for i in range(N_STATS):
                    pair_stats[pair, i] = stats[i]
                pair_scores[pair] = score
            if score > best:  # the first reference with the strictly highest score
                best = score
                for i in range(N_STATS):
                    best_stats[l, i] = stats[i]
                best_scores[l] = score
    return skipped


def corpus_stats(const int[:, ::1] rows):
    """meteor.aggregate on statistics rows: sums, where whole-match rows add no chunk."""
    cdef long long sums[N_STATS]
    cdef Py_ssize_t r
    cdef int i
    if rows.shape[1] != N_STATS:
        raise ValueError(f"statistics rows have {N_STATS} columns")
    for i in range(N_STATS):
        sums[i] = 0
    for r in range(rows.shape[0]):
        for i in range(N_STATS):
            if i != CHUNKS or not whole_match(&rows[r, 0]):
                sums[i] += rows[r, i]
    return [sums[i] for i in range(N_STATS)]


cdef struct Int64Map:  # open addressing: int64 key (>= 0) -> int32 value
    int64_t *keys
    int32_t *vals
    Py_ssize_t cap, n


cdef int map_init(Int64Map *m, Py_ssize_t cap) except -1:
    m.cap, m.n = 64, 0
    while m.cap < 2 * cap:
        m.cap *= 2
    m.keys = <int64_t *>malloc(m.cap * sizeof(int64_t))
    m.vals = <int32_t *>malloc(m.cap * sizeof(int32_t))
    if m.keys == NULL or m.vals == NULL:
        raise MemoryError()
    memset(m.keys, 0xFF, m.cap * sizeof(int64_t))
    return 0


cdef void map_free(Int64Map *m) noexcept:
    free(m.keys)
    free(m.vals)
    m.keys, m.vals = NULL, NULL


cdef inline Py_ssize_t map_slot(const Int64Map *m, int64_t key) noexcept:
    cdef uint64_t h = <uint64_t>key * <uint64_t>0x9E3779B97F4A7C15
    cdef Py_ssize_t i = <Py_ssize_t>((h ^ (h >> 29)) & <uint64_t>(m.cap - 1))
    while m.keys[i] != -1 and m.keys[i] != key:
        i = (i + 1) & (m.cap - 1)
    return i


cdef int32_t map_get(const Int64Map *m, int64_t key) noexcept:
    cdef Py_ssize_t i = map_slot(m, key)
    return m.vals[i] if m.keys[i] == key else -1


cdef int map_put(Int64Map *m, int64_t key, int32_t val) except -1:
    cdef Int64Map old
    cdef Py_ssize_t i
    if 2 * (m.n + 1) > m.cap:
        old = m[0]
        map_init(m, old.cap)
        for i in range(old.cap):
            if old.keys[i] != -1:
                map_put(m, old.keys[i], old.vals[i])
        map_free(&old)
    i = map_slot(m, key)
    if m.keys[i] != key:
        m.keys[i] = key
        m.n += 1
    m.vals[i] = val
    return 0


cdef Py_ssize_t _search(const int64_t[::1] key_off, const int64_t[::1] phrase_off, const uint16_t[::1] phrase_tok,
                        const int64_t[::1] ent_off, const int32_t[::1] ent_p2, const int64_t[::1] ids,
                        int64_t **found) except -1:
    """The entries whose phrase and paraphrase have all their words among `ids` (sorted
    vocabulary ids): found[0] gets (entry, phrase, paraphrase) triples, in the order of the
    numpy version (by key word, then phrase, then table order). Returns their number."""
    cdef Py_ssize_t n_vocab = key_off.shape[0] - 1, n_phrases = phrase_off.shape[0] - 1
    cdef Py_ssize_t i, p, q, t, e, n_good = 0, cap = 0, n_found = 0, cap_found = 0
    cdef int64_t w
    cdef bint ok
    cdef int64_t *good_list = NULL
    cdef unsigned char *known = <unsigned char *>calloc(n_vocab + 1, 1)
    cdef unsigned char *good = <unsigned char *>calloc(n_phrases + 1, 1)
    try:
        if known == NULL or good == NULL:
            raise MemoryError()
        for i in range(ids.shape[0]):
            if ids[i] < 0 or ids[i] >= n_vocab:
                raise ValueError(f"word id {ids[i]} outside the vocabulary")
            known[ids[i]] = 1
        for i in range(ids.shape[0]):
            w = ids[i]
            if i and w == ids[i - 1]:
                continue
            for p in range(key_off[w], key_off[w + 1]):
                ok = True
                for t in range(phrase_off[p], phrase_off[p + 1]):
                    if not known[phrase_tok[t]]:
                        ok = False
                        break
                if ok:
                    good[p] = 1
                    good_list = <int64_t *>_grow(good_list, &cap, n_good + 1, sizeof(int64_t))
                    good_list[n_good] = p
                    n_good += 1
        for i in range(n_good):
            p = good_list[i]
            for e in range(ent_off[p], ent_off[p + 1]):
                q = ent_p2[e]
                if good[q]:
                    found[0] = <int64_t *>_grow(found[0], &cap_found, 3 * (n_found + 1), sizeof(int64_t))
                    found[0][3 * n_found], found[0][3 * n_found + 1], found[0][3 * n_found + 2] = e, p, q
                    n_found += 1
    finally:
        free(known)
        free(good)
        free(good_list)
    return n_found


def entries_within(const int64_t[::1] key_off, const int64_t[::1] phrase_off, const uint16_t[::1] phrase_tok,
                   const int64_t[::1] ent_off, const int32_t[::1] ent_p2, const int64_t[::1] ids):
    """meteor_data.ParaphraseIndex.entries_within's search over the index arrays (see
    _search): three int64 arrays (array.array): entries, their phrases, their paraphrases."""
    cdef int64_t *found = NULL
    cdef Py_ssize_t n, i
    cdef array.array ents = array.array("q"), p1 = array.array("q"), p2 = array.array("q")
    try:
        n = _search(key_off, phrase_off, phrase_tok, ent_off, ent_p2, ids, &found)
        for a in (ents, p1, p2):
            array.resize(a, n)
        for i in range(n):
            ents.data.as_longlongs[i] = found[3 * i]
            p1.data.as_longlongs[i] = found[3 * i + 1]
            p2.data.as_longlongs[i] = found[3 * i + 2]
    finally:
        free(found)
    return ents, p1, p2


cdef int edge_cmp(const void *a, const void *b) noexcept nogil:
    cdef const int64_t *p = <const int64_t *>a
    cdef const int64_t *q = <const int64_t *>b
    cdef int k
    for k in range(3):
        if p[k] != q[k]:
            return -1 if p[k] < q[k] else 1
    return 0


def paraphrase_trie(const int64_t[::1] key_off, const int64_t[::1] phrase_off, const uint16_t[::1] phrase_tok,
                    const int64_t[::1] ent_off, const int32_t[::1] ent_record, const int32_t[::1] ent_p2,
                    const int32_t[::1] word_of):
    """The trie score_lines takes (see there), of the paraphrase entries whose words are all
    among the scorer's words: word_of maps the index's vocabulary ids to scorer word ids
    (-1 for words it does not have). Returns the eight arrays as array.array."""
    cdef Py_ssize_t n_vocab = key_off.shape[0] - 1, i, k, n, t, n_nodes = 1, cap_nodes = 0, cap_e = 0
    cdef int64_t *found = NULL
    cdef int64_t *edges = NULL  # (parent, word, child)
    cdef int64_t *ents = NULL  # (node of the phrase, record, node of the paraphrase)
    cdef int32_t *depth = NULL
    cdef signed char *target = NULL
    cdef Int64Map child, node_of
    cdef int64_t phrase
    cdef int32_t node, nxt, w
    cdef int32_t ends[2]
    cdef array.array child_off, child_word, child_node, entry_off, records, targets, is_target, depths, ids
    if word_of.shape[0] != n_vocab:
        raise ValueError("word_of must map every vocabulary id")
    child.keys = child.vals = NULL
    node_of.keys = node_of.vals = NULL
    ids = array.array("q")
    for i in range(n_vocab):
        if word_of[i] >= 0:
            ids.append(i)
    try:
        map_init(&child, 1024)
        map_init(&node_of, 1024)
        depth = <int32_t *>_grow(NULL, &cap_nodes, 1, sizeof(int32_t))
        target = <signed char *>malloc(cap_nodes)
        if target == NULL:
            raise MemoryError()
        depth[0], target[0] = 0, 0
        n = _search(key_off, phrase_off, phrase_tok, ent_off, ent_p2, ids, &found) if len(ids) else 0
        ents = <int64_t *>malloc((3 * n + 1) * sizeof(int64_t))
        if ents == NULL:
            raise MemoryError()
        for i in range(n):
            for k in range(2):  # the entry's phrase, then its paraphrase
                phrase = found[3 * i + 1 + k]
                node = map_get(&node_of, phrase)
                if node < 0:
                    node = 0
                    for t in range(phrase_off[phrase], phrase_off[phrase + 1]):
                        w = word_of[phrase_tok[t]]
                        nxt = map_get(&child, (<int64_t>node << 32) | w)
                        if nxt < 0:
                            nxt = <int32_t>n_nodes
                            if n_nodes == cap_nodes:
                                depth = <int32_t *>_grow(depth, &cap_nodes, n_nodes + 1, sizeof(int32_t))
                                target = <signed char *>_resize(target, cap_nodes)
                            depth[nxt], target[nxt] = depth[node] + 1, 0
                            n_nodes += 1
                            map_put(&child, (<int64_t>node << 32) | w, nxt)
                            edges = <int64_t *>_grow(edges, &cap_e, 3 * (n_nodes - 1), sizeof(int64_t))
                            edges[3 * (nxt - 1)], edges[3 * (nxt - 1) + 1], edges[3 * (nxt - 1) + 2] = node, w, nxt
                        node = nxt
                    map_put(&node_of, phrase, node)
                ends[k] = node
            ents[3 * i], ents[3 * i + 1], ents[3 * i + 2] = ends[0], ent_record[found[3 * i]], ends[1]
            target[ends[1]] = 1
        if n_nodes > 2:
            qsort(edges, n_nodes - 1, 3 * sizeof(int64_t), edge_cmp)
        if n > 1:
            qsort(ents, n, 3 * sizeof(int64_t), edge_cmp)
        child_off, child_word, child_node = array.array("i", [0]) * (n_nodes + 1), array.array("i"), array.array("i")
        entry_off, records, targets = array.array("i", [0]) * (n_nodes + 1), array.array("i"), array.array("i")
        array.resize(child_word, n_nodes - 1)
        array.resize(child_node, n_nodes - 1)
        array.resize(records, n)
        array.resize(targets, n)
        for i in range(n_nodes - 1):
            child_off.data.as_ints[edges[3 * i] + 1] += 1
            child_word.data.as_ints[i] = <int>edges[3 * i + 1]
            child_node.data.as_ints[i] = <int>edges[3 * i + 2]
        for i in range(n):
            entry_off.data.as_ints[ents[3 * i] + 1] += 1
            records.data.as_ints[i] = <int>ents[3 * i + 1]
            targets.data.as_ints[i] = <int>ents[3 * i + 2]
        for i in range(n_nodes):
            child_off.data.as_ints[i + 1] += child_off.data.as_ints[i]
            entry_off.data.as_ints[i + 1] += entry_off.data.as_ints[i]
        is_target, depths = array.array("b"), array.array("i")
        array.resize(is_target, n_nodes)
        array.resize(depths, n_nodes)
        for i in range(n_nodes):
            is_target.data.as_schars[i] = target[i]
            depths.data.as_ints[i] = depth[i]
        return child_off, child_word, child_node, entry_off, records, targets, is_target, depths
    finally:
        map_free(&child)
        map_free(&node_of)
        free(found)
        free(edges)
        free(ents)
        free(depth)
        free(target)


cdef inline bint _linking(unsigned char c) noexcept nogil:
    return c == 44 or c == 39 or c == 96 or c == 46  # , ' ` .


cdef bint _words_alone(str text) noexcept:
    """Whether the text's METEOR tokens are its words' tokens, each word normalized on its
    own (MeteorScorer.tokens' fast path): printable ASCII words joined by single spaces, none
    ending in a character whose normalization patterns reach across a space (, ' ` .)."""
    cdef Py_ssize_t i, n = len(text)
    cdef const unsigned char *p
    cdef unsigned char c, prev = 32
    if not PyUnicode_IS_ASCII(text):
        return False
    p = <const unsigned char *>PyUnicode_DATA(text)
    for i in range(n):
        c = p[i]
        if c == 32:
            if prev == 32 or _linking(prev):
                return False
        elif c < 33 or c > 126:
            return False
        prev = c
    return n == 0 or not (prev == 32 or _linking(prev))


cdef class WordIds:
    """The ids of each PTB word's METEOR tokens (a word: what lies between two spaces of a
    text that _words_alone accepts), so that a corpus' texts become ids without building a
    string per word."""

    cdef ByteMap map
    cdef int32_t *start  # per word: its ids are toks[start[k]:start[k] + count[k]]
    cdef int32_t *count
    cdef int32_t *toks
    cdef Py_ssize_t cap, n_toks, cap_toks

    def __cinit__(self):
        bm_init(&self.map)

    def __dealloc__(self):
        bm_free(&self.map)
        free(self.start)
        free(self.count)
        free(self.toks)

    def __len__(self):
        return self.map.n

    def add(self, str word, tuple ids):
        """Record a word's token ids (a word already recorded keeps its first ids)."""
        cdef Py_ssize_t k, before = self.map.n, i
        if not PyUnicode_IS_ASCII(word):
            raise ValueError(f"{word!r}: only ASCII words occur in texts that split into words")
        k = bm_intern(&self.map, <const char *>PyUnicode_DATA(word), len(word))
        if k < before:
            return
        if k >= self.cap:
            self.cap = max(2 * self.cap, 256)
            self.start = <int32_t *>_resize(self.start, self.cap * sizeof(int32_t))
            self.count = <int32_t *>_resize(self.count, self.cap * sizeof(int32_t))
        self.toks = <int32_t *>_grow(self.toks, &self.cap_toks, self.n_toks + len(ids) + 1, sizeof(int32_t))
        self.start[k], self.count[k] = <int32_t>self.n_toks, <int32_t>len(ids)
        for i in range(len(ids)):
            self.toks[self.n_toks] = ids[i]
            self.n_toks += 1

    def unknown(self, list texts):
        """The words of these texts that have no ids yet, and the indices of the texts that
        must be normalized whole (see _words_alone)."""
        cdef str text
        cdef Py_ssize_t t, i, a, n, before
        cdef const char *p
        cdef ByteMap seen  # the unknown words so far: each becomes a string once
        unknown = []
        whole = []
        bm_init(&seen)
        try:
            for t in range(len(texts)):
                text = texts[t]
                if not _words_alone(text):
                    whole.append(t)
                    continue
                p, n, a = <const char *>PyUnicode_DATA(text), len(text), 0
                for i in range(n + 1):
                    if i == n or p[i] == 32:
                        if i > a and bm_find(&self.map, p + a, i - a) < 0:
                            before = seen.n
                            if bm_intern(&seen, p + a, i - a) == before:
                                unknown.append(text[a:i])
                        a = i + 1
        finally:
            bm_free(&seen)
        return unknown, whole

    def sentences(self, list texts, whole):
        """Each text as token ids: its words' ids, or, for a text that must be normalized
        whole, whole(text) (a tuple of ids). Returns (offsets int64, ids int32) as
        array.array, text t being ids[offsets[t]:offsets[t + 1]]."""
        cdef str text
        cdef Py_ssize_t t, i, a, n, k, total = 0, cap = 0
        cdef int32_t w
        cdef const char *p
        cdef tuple ids
        cdef int32_t *out = NULL
        cdef array.array off = array.array("q"), result = array.array("i")
        array.resize(off, len(texts) + 1)
        try:
            off.data.as_longlongs[0] = 0
            for t in range(len(texts)):
                text = texts[t]
                if not _words_alone(text):
                    ids = whole(text)
                    out = <int32_t *>_grow(out, &cap, total + len(ids) + 1, sizeof(int32_t))
                    for k in range(len(ids)):
                        out[total] = ids[k]
                        total += 1
                else:
                    p, n, a = <const char *>PyUnicode_DATA(text), len(text), 0
                    out = <int32_t *>_grow(out, &cap, total + 8 * (n + 1), sizeof(int32_t))
                    for i in range(n + 1):
                        if i == n or p[i] == 32:
                            if i > a:
                                w = bm_find(&self.map, p + a, i - a)
                                if w < 0:
                                    raise KeyError(text[a:i])
                                out = <int32_t *>_grow(out, &cap, total + self.count[w] + 1, sizeof(int32_t))
                                for k in range(self.start[w], self.start[w] + self.count[w]):
                                    out[total] = self.toks[k]
                                    total += 1
                            a = i + 1
                off.data.as_longlongs[t + 1] = total
            array.resize(result, total)
            for k in range(total):
                result.data.as_ints[k] = out[k]
        finally:
            free(out)
        return off, result


def find_words(const unsigned char[:, ::1] table, list words, encode):
    """meteor_data.SortedWords.find: the row of each word in `table` (sorted, NUL-padded
    fixed-width UTF-8, one word a row), -1 where it is absent. encode(word) gives a
    non-ASCII word's bytes."""
    cdef Py_ssize_t n_rows = table.shape[0], width = table.shape[1], k, lo, hi, mid, n
    cdef const unsigned char *q
    cdef int c
    cdef bytes b
    cdef object word
    cdef array.array out = array.array("q")
    array.resize(out, len(words))
    for k in range(len(words)):
        word = words[k]
        if PyUnicode_IS_ASCII(word):
            q, n = <const unsigned char *>PyUnicode_DATA(word), len(<str>word)
        else:
            b = encode(word)
            q, n = <const unsigned char *>b, len(b)
        out.data.as_longlongs[k] = -1
        if n > width or n_rows == 0 or memchr(q, 0, n) != NULL:
            continue  # a fixed-width row can hold neither
        lo, hi = 0, n_rows
        while lo < hi:  # the first row >= the word (rows compare as NUL-padded bytes)
            mid = (lo + hi) >> 1
            c = memcmp(&table[mid, 0], q, n)
            if c == 0 and n < width and table[mid, n] != 0:
                c = 1
            if c < 0:
                lo = mid + 1
            else:
                hi = mid
        if lo < n_rows and memcmp(&table[lo, 0], q, n) == 0 and (n == width or table[lo, n] == 0):
            out.data.as_longlongs[k] = lo
    return out
