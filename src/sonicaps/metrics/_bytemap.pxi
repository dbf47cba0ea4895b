# Included by _coco.pyx and _meteor.pyx: interning byte strings (words) as dense ids, and
# the checked realloc both use for their growing buffers.
#
# Scoring splits every caption into words and looks each up; as Python strings each lookup
# allocates a string, hashes it and frees it, which cost more than the metrics' own
# arithmetic. Here a word is a span of the caption's bytes (ASCII captions, nearly all of
# them) and the table keeps its own copy of each distinct word.

from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcmp, memcpy, memset


cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object)
    void *PyUnicode_DATA(object)


cdef struct ByteMap:
    char *arena  # the words' bytes, one after another
    Py_ssize_t arena_len, arena_cap
    Py_ssize_t *start  # per id: where its bytes start in arena
    int32_t *length  # per id: how many
    uint64_t *hash  # per id
    Py_ssize_t n, cap  # ids, room for ids
    int32_t *slots  # open addressing: id or -1
    Py_ssize_t n_slots  # a power of 2, at least twice n


cdef inline uint64_t bm_hash(const char *p, Py_ssize_t n) noexcept nogil:
    """FNV-1a, 64 bits."""
    cdef uint64_t h = <uint64_t>0xcbf29ce484222325
    cdef Py_ssize_t i
    for i in range(n):
        h = (h ^ <unsigned char>p[i]) * <uint64_t>0x100000001b3
    return h


cdef int bm_init(ByteMap *m) except -1:
    memset(m, 0, sizeof(ByteMap))
    m.n_slots = 1024
    m.slots = <int32_t *>malloc(m.n_slots * sizeof(int32_t))
    if m.slots == NULL:
        raise MemoryError()
    memset(m.slots, 0xFF, m.n_slots * sizeof(int32_t))
    return 0


cdef void bm_free(ByteMap *m) noexcept:
    free(m.arena)
    free(m.start)
    free(m.length)
    free(m.hash)
    free(m.slots)
    memset(m, 0, sizeof(ByteMap))


cdef inline Py_ssize_t bm_slot(const ByteMap *m, const char *p, Py_ssize_t n, uint64_t h) noexcept nogil:
    """The slot holding this word, or the free slot where it would go."""
    cdef Py_ssize_t i = <Py_ssize_t>(h & <uint64_t>(m.n_slots - 1))
    cdef int32_t k
    while True:
        k = m.slots[i]
        if k < 0 or (m.hash[k] == h and m.length[k] == n and memcmp(m.arena + m.start[k], p, n) == 0):
            return i
        i = (i + 1) & (m.n_slots - 1)


cdef inline int32_t bm_find(const ByteMap *m, const char *p, Py_ssize_t n) noexcept nogil:
    """The word's id, or -1."""
    return m.slots[bm_slot(m, p, n, bm_hash(p, n))]


cdef int32_t bm_intern(ByteMap *m, const char *p, Py_ssize_t n) except -1:
    """The word's id, a new one if it is new."""
    cdef uint64_t h = bm_hash(p, n)
    cdef Py_ssize_t i = bm_slot(m, p, n, h), j, cap
    cdef int32_t k = m.slots[i]
    cdef int32_t *slots
    if k >= 0:
        return k
    if m.n == m.cap:
        cap = max(2 * m.cap, 256)
        m.start = <Py_ssize_t *>_resize(m.start, cap * sizeof(Py_ssize_t))
        m.length = <int32_t *>_resize(m.length, cap * sizeof(int32_t))
        m.hash = <uint64_t *>_resize(m.hash, cap * sizeof(uint64_t))
        m.cap = cap
    if m.arena_len + n > m.arena_cap:
        cap = max(2 * m.arena_cap, m.arena_len + n, 4096)
        m.arena = <char *>_resize(m.arena, cap)
        m.arena_cap = cap
    k = <int32_t>m.n
    memcpy(m.arena + m.arena_len, p, n)
    m.start[k], m.length[k], m.hash[k] = m.arena_len, <int32_t>n, h
    m.arena_len += n
    m.n += 1
    m.slots[i] = k
    if 2 * m.n > m.n_slots:  # rehash into twice the slots
        slots = <int32_t *>malloc(2 * m.n_slots * sizeof(int32_t))
        if slots == NULL:
            raise MemoryError()
        free(m.slots)
        m.slots, m.n_slots = slots, 2 * m.n_slots
        memset(m.slots, 0xFF, m.n_slots * sizeof(int32_t))
        for j in range(m.n):
            i = <Py_ssize_t>(m.hash[j] & <uint64_t>(m.n_slots - 1))
            while m.slots[i] >= 0:
                i = (i + 1) & (m.n_slots - 1)
            m.slots[i] = <int32_t>j
    return k


cdef int32_t bm_intern_str(ByteMap *m, str word) except -1:
    """bm_intern for a word given as a string (UTF-8; lone surrogates kept)."""
    cdef bytes b
    if PyUnicode_IS_ASCII(word):
        return bm_intern(m, <const char *>PyUnicode_DATA(word), len(word))
    b = word.encode("utf-8", "surrogatepass")
    return bm_intern(m, b, len(b))


cdef void *_resize(void *p, size_t size) except NULL:
    cdef void *q = realloc(p, size)
    if q == NULL:
        raise MemoryError()
    return q


cdef void *_grow(void *p, Py_ssize_t *cap, Py_ssize_t need, size_t item) except NULL:
    """Make room for `need` items in a realloc'd buffer of capacity *cap."""
    cdef Py_ssize_t new_cap
    cdef void *q
    if need <= cap[0] and p != NULL:
        return p
    new_cap = max(need, 2 * cap[0], 16)
    q = realloc(p, new_cap * item)
    if q == NULL:
        raise MemoryError()
    cap[0] = new_cap
    return q
