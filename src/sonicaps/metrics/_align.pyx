# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""METEOR's aligner in C: the same matching, beam search and counting as
meteor.MeteorScorer._align / _resolve (which stay the readable reference and the fallback).

Written by hand because no library implements meteor-1.5.jar's Aligner with its quirks,
and in pure Python the beam search is most of the suite's time. Word sets are 64-bit masks,
so sentences of up to 64 words go through here; longer ones use the Python path.
"""

from libc.stdlib cimport free, malloc, qsort, realloc
from libc.stdint cimport int64_t, uint64_t

cdef enum:
    BEAM_SIZE = 40  # meteor.BEAM_SIZE
    MAX_WORDS = 64
    # Module ids, as in meteor.py.
    EXACT = 0
    STEM = 1
    SYNONYM = 2
    PARAPHRASE = 3


cdef struct Match:
    int rstart, rlen, tstart, tlen, module, gain, dist
    uint64_t rbits, tbits


cdef struct Path:
    int neg, chunks, dist, idx, last, order, node
    uint64_t tbits, rbits


cdef struct Node:
    int match, parent


cdef inline uint64_t span(int start, int length):
    if length >= 64:
        return <uint64_t>0xFFFFFFFFFFFFFFFF << start
    return ((<uint64_t>1 << length) - 1) << start


cdef inline Match make_match(int rstart, int rlen, int tstart, int tlen, int module):
    cdef Match m
    m.rstart, m.rlen, m.tstart, m.tlen, m.module = rstart, rlen, tstart, tlen, module
    # The jar adds (int)(count * weight): weight 1 for exact, 0.5 for the other modules.
    m.gain = tlen + rlen if module == EXACT else tlen // 2 + rlen // 2
    m.dist = rstart - tstart if rstart >= tstart else tstart - rstart
    m.rbits, m.tbits = span(rstart, rlen), span(tstart, tlen)
    return m


cdef int path_cmp(const void *a, const void *b) noexcept nogil:
    # (score, chunks, distance), then the order before sorting: a stable sort, as Collections.sort.
    cdef const Path *p = <const Path *>a
    cdef const Path *q = <const Path *>b
    if p.neg != q.neg:
        return -1 if p.neg < q.neg else 1
    if p.chunks != q.chunks:
        return -1 if p.chunks < q.chunks else 1
    if p.dist != q.dist:
        return -1 if p.dist < q.dist else 1
    return -1 if p.order < q.order else (1 if p.order > q.order else 0)


cdef void sort_paths(Path *paths, int n) noexcept:
    cdef int k
    for k in range(n):
        paths[k].order = k
    qsort(paths, n, sizeof(Path), path_cmp)


cdef bint shares_synset(int64_t *ids, int a0, int a1, int b0, int b1) noexcept:
    """Whether two sorted id runs ids[a0:a1] and ids[b0:b1] intersect."""
    while a0 < a1 and b0 < b1:
        if ids[a0] == ids[b0]:
            return True
        if ids[a0] < ids[b0]:
            a0 += 1
        else:
            b0 += 1
    return False


cdef class _Buffers:
    """Scratch memory reused across calls: a scorer aligns thousands of pairs."""

    cdef Match *matches
    cdef int match_cap
    cdef Path *paths
    cdef Path *next_paths
    cdef int path_cap
    cdef Node *nodes
    cdef int node_cap
    cdef int64_t *syn
    cdef int syn_cap

    def __dealloc__(self):
        free(self.matches)
        free(self.paths)
        free(self.next_paths)
        free(self.nodes)
        free(self.syn)

    cdef Match *grow_matches(self, int n) except NULL:
        if n > self.match_cap:
            self.match_cap = max(n, 2 * self.match_cap)
            self.matches = <Match *>_realloc(self.matches, self.match_cap * sizeof(Match))
        return self.matches

    cdef void grow_paths(self, int n) except *:
        if n > self.path_cap:
            self.path_cap = max(n, 2 * self.path_cap)
            self.paths = <Path *>_realloc(self.paths, self.path_cap * sizeof(Path))
            self.next_paths = <Path *>_realloc(self.next_paths, self.path_cap * sizeof(Path))

    cdef Node *grow_nodes(self, int n) except NULL:
        if n > self.node_cap:
            self.node_cap = max(n, 2 * self.node_cap)
            self.nodes = <Node *>_realloc(self.nodes, self.node_cap * sizeof(Node))
        return self.nodes

    cdef int64_t *grow_syn(self, int n) except NULL:
        if n > self.syn_cap:
            self.syn_cap = max(n, 2 * self.syn_cap)
            self.syn = <int64_t *>_realloc(self.syn, self.syn_cap * sizeof(int64_t))
        return self.syn


cdef int _copy_synsets(list words, int n_words, int64_t *syn, int *off, int n) except -1:
    """Append each word's synset ids to syn from position n; off[w] is where word w's run
    starts, off[n_words] where the last one ends. Returns the next free position."""
    cdef tuple ids
    cdef int w, k
    for w in range(n_words):
        off[w] = n
        ids = words[w]
        for k in range(len(ids)):
            syn[n] = ids[k]
            n += 1
    off[n_words] = n
    return n


cdef void *_realloc(void *p, size_t size) except NULL:
    cdef void *q = realloc(p, size)
    if q == NULL:
        raise MemoryError()
    return q


cdef _Buffers _buf = _Buffers()


def align(list th, list ts, list tf, list tsyn, list rh, list rs, list rf, list rsyn, list para):
    """Statistics of one alignment, as MeteorScorer._align computes them, or None when a
    sentence is longer than 64 words.

    th/rh: word hashes, ts/rs: stem hashes, tf/rf: function-word flags, tsyn/rsyn: each
    word's sorted synset ids; para: paraphrase matches (ref start, ref length, test start,
    test length) in the order they are found. Returns (test function words, ref function
    words, test content, ref content, test function, ref function (4 per-module counts
    each, flattened), chunks, test word matches, ref word matches).
    """
    cdef int n1 = len(th), n2 = len(rh)
    if n1 > MAX_WORDS or n2 > MAX_WORDS:
        return None
    cdef _Buffers buf = _buf
    cdef unsigned int[MAX_WORDS] thash, rhash, tstem, rstem
    cdef char[MAX_WORDS] tfn, rfn
    cdef int[MAX_WORDS + 1] tsoff, rsoff
    cdef int[MAX_WORDS] cover1, cover2, fixed, per_ref, first
    cdef int i, j, k, x, n_syn = 0, n, nm = 0, npara = len(para)
    cdef bint same = True
    cdef int64_t *syn

    for i in range(n1):
        thash[i], tstem[i], tfn[i] = th[i], ts[i], tf[i]
    for j in range(n2):
        rhash[j], rstem[j], rfn[j] = rh[j], rs[j], rf[j]
    # Synset ids of both sentences in one buffer: test words' runs, then reference words'.
    for i in range(n1):
        n_syn += len(<tuple>tsyn[i])
    for j in range(n2):
        n_syn += len(<tuple>rsyn[j])
    syn = buf.grow_syn(n_syn + 1)
    n = _copy_synsets(tsyn, n1, syn, tsoff, 0)
    _copy_synsets(rsyn, n2, syn, rsoff, n)

    if n1 != n2:
        same = False
    else:
        for i in range(n1):
            if thash[i] != rhash[i]:
                same = False
                break

    # Candidate matches in the order the jar's matchers add them.
    cdef Match *ms = buf.grow_matches(n1 * n2 * 3 + npara + 1)
    for j in range(n2):
        for i in range(n1):
            if thash[i] == rhash[j]:
                ms[nm] = make_match(j, 1, i, 1, EXACT)
                nm += 1
    if not same:  # identical sentences get exact matches only (avoids beam search errors)
        for j in range(n2):
            for i in range(n1):
                if tstem[i] == rstem[j] and thash[i] != rhash[j]:
                    ms[nm] = make_match(j, 1, i, 1, STEM)
                    nm += 1
        for j in range(n2):
            if rsoff[j] == rsoff[j + 1]:
                continue
            for i in range(n1):
                if thash[i] != rhash[j] and shares_synset(syn, tsoff[i], tsoff[i + 1], rsoff[j], rsoff[j + 1]):
                    ms[nm] = make_match(j, 1, i, 1, SYNONYM)
                    nm += 1
        for k in range(npara):
            p = para[k]
            if p[0] + p[1] > n2 or p[2] + p[3] > n1:
                raise ValueError(f"paraphrase match {p} outside the sentences")
            ms[nm] = make_match(p[0], p[1], p[2], p[3], PARAPHRASE)
            nm += 1

    # Bucket by reference start, keeping the order within each start (the jar's per-position lists).
    cdef Match *staged = buf.grow_matches(2 * nm + 1) + nm
    ms = buf.matches
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
    cdef Match *m
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

    cdef int[MAX_WORDS] chosen
    for j in range(n2):
        chosen[j] = fixed[j]
    if ambiguous:
        _resolve(buf, staged, first, per_ref, fixed, n2, test_bits, ref_bits, chosen)

    cdef int[16] counts
    for k in range(16):
        counts[k] = 0
    cdef int chunks = 0, idx = 0, last_end = -1, test_matches = 0, ref_matches = 0
    for j in range(n2):
        if chosen[j] != -1:
            m = &staged[chosen[j]]
            for x in range(m.tstart, m.tstart + m.tlen):
                counts[(8 if tfn[x] else 0) + m.module] += 1
            for x in range(m.rstart, m.rstart + m.rlen):
                counts[(12 if rfn[x] else 4) + m.module] += 1
    # Aligner.getCountAndChunks
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
    cdef int tfw = 0, rfw = 0
    for i in range(n1):
        tfw += tfn[i]
    for j in range(n2):
        rfw += rfn[j]
    return (tfw, rfw, tuple([counts[k] for k in range(16)]), chunks, test_matches, ref_matches)


cdef void _resolve(_Buffers buf, Match *staged, int *first, int *per_ref, int *fixed, int n2,
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
    buf.grow_paths(BEAM_SIZE * (most + 1) + 1)
    paths, nxt = buf.paths, buf.next_paths
    paths[0].neg = paths[0].chunks = paths[0].dist = paths[0].idx = 0
    paths[0].last, paths[0].node = -1, -1
    paths[0].tbits, paths[0].rbits = test_bits, ref_bits
    for current in range(n2):
        if n_paths > 1:
            sort_paths(paths, n_paths)
            n_paths = min(n_paths, BEAM_SIZE)
        n_next = 0
        bit = <uint64_t>1 << current
        buf.grow_nodes(n_nodes + n_paths * per_ref[current] + 1)
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
                    buf.nodes[n_nodes].match, buf.nodes[n_nodes].parent = k, path.node
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
        sort_paths(paths, n_paths)
        n_paths = min(n_paths, BEAM_SIZE)
    for p in range(n_paths):
        if paths[p].last != -1:
            paths[p].chunks += 1
    sort_paths(paths, n_paths)
    k = paths[0].node
    while k != -1:
        chosen[staged[buf.nodes[k].match].rstart] = buf.nodes[k].match
        k = buf.nodes[k].parent
    buf.paths, buf.next_paths = paths, nxt
