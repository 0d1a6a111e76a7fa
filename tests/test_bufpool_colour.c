/* Buffer pool: the colours of large blocks (bufpool_store.c). Each large
 * block's header sits a whole number of cache lines into the first page of a
 * mapping one page longer than the block, so that the headers of the blocks a
 * thread cycles through spread over the sets of the L1 cache. Checked here:
 * buffers keep their alignment and their class's whole usable size, blocks
 * mapped one after the other take distinct colours, the colour page is counted
 * in every byte figure, and trim, decay and cache_limit unmap the whole
 * mapping (mincore says no page of it is mapped any more).
 */
#include "bufpool_test_util.h"

#include <sys/mman.h>

#define DECAY_NS 100000000 /* 100 ms */
#define WAIT_MS 5000
#define LINE 64
#define COLOURS 64 /* header offsets in the first 4 KiB of a block */

static size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* The header's offset in its 4 KiB (16 bytes in front of the buffer). */
static size_t colour_of(const void *buf)
{
    return ((uintptr_t)buf - 16) & (COLOURS * LINE - 1);
}

/* Whether no byte of [p, p + n) is mapped: mincore fails with ENOMEM on
 * every page that is not. */
static bool unmapped(const void *p, size_t n)
{
    size_t page = page_size();
    uintptr_t lo = (uintptr_t)p & ~(uintptr_t)(page - 1);
    uintptr_t hi = ((uintptr_t)p + n - 1) & ~(uintptr_t)(page - 1);
    unsigned char v;
    for (uintptr_t a = lo; a <= hi; a += page)
        if (mincore((void *)a, page, &v) == 0 || errno != ENOMEM)
            return false;
    return true;
}

/* The start of the mapping that holds buf: its header's page. */
static void *mapping_of(void *buf)
{
    return (char *)buf - 16 - colour_of(buf);
}

static void put_all(fm_bufpool *b, void **p, int n)
{
    for (int i = 0; i < n; i++)
        fm_bufpool_put(b, p[i]);
}

/* How many of the n mappings that held p[0..n) are gone whole. */
static int count_unmapped(void **p, int n, size_t span)
{
    int gone = 0;
    for (int i = 0; i < n; i++)
        gone += unmapped(mapping_of(p[i]), span);
    return gone;
}

/* Gets n buffers of size bytes, live at once; checks each one's alignment,
 * usable size and colour, writes every byte of it, and says how many colours
 * they took. */
static int get_coloured(fm_bufpool *b, size_t size, void **p, int n)
{
    bool seen[COLOURS] = {false};
    int distinct = 0;
    size_t usable = 0;
    for (int i = 0; i < n; i++) {
        p[i] = fm_bufpool_get(b, size);
        FM_CHECK(p[i] != NULL);
        FM_CHECK(((uintptr_t)p[i] & 15) == 0);
        size_t u = fm_bufpool_usable_size(b, p[i]);
        FM_CHECK(u >= size);
        FM_CHECK(usable == 0 || u == usable); /* one class: one usable size */
        usable = u;
        size_t c = colour_of(p[i]);
        FM_CHECK(c % LINE == 0);
        distinct += !seen[c / LINE];
        seen[c / LINE] = true;
        touch_all(p[i], u, (unsigned char)i); /* the whole usable size is there */
    }
    for (int i = 0; i < n; i++) {
        const unsigned char *q = p[i];
        size_t u = fm_bufpool_usable_size(b, q);
        FM_CHECK(q[0] == (unsigned char)i && q[u - 1] == (unsigned char)i); /* no overlap */
    }
    return distinct;
}

/* Blocks of one class mapped one after the other: 64 of them take all 64
 * colours, and each keeps its class's usable size. */
FM_TEST(blocks_of_one_class_take_distinct_colours)
{
    fm_bufpool_opts o = {.decay_ns = -1};
    fm_bufpool *b = new_bufpool(&o);
    void *p[COLOURS];
    FM_CHECK_EQ(get_coloured(b, 100000, p, COLOURS), COLOURS);
    put_all(b, p, COLOURS);
    fm_bufpool_destroy(b);
}

/* One buffer of every large class, all live: their headers are on distinct
 * lines of the 4 KiB the L1 sets repeat over. */
FM_TEST(blocks_of_every_large_class_spread_over_the_l1_sets)
{
    fm_bufpool_opts o = {.decay_ns = -1};
    fm_bufpool *b = new_bufpool(&o);
    int classes = bufpool_stats(b).classes, n = 0;
    bool seen[COLOURS] = {false};
    void *p[128];
    for (int c = 0; c < classes; c++) {
        struct fm_bufpool_class_stats k;
        FM_CHECK_EQ(fm_bufpool_class_stats(b, c, &k), 0);
        if (k.size + 16 < 16 * 1024)
            continue; /* carved from chunks: no colour of their own */
        FM_CHECK(n < COLOURS);
        p[n] = fm_bufpool_get(b, k.size);
        FM_CHECK(p[n] != NULL);
        FM_CHECK_EQ(fm_bufpool_usable_size(b, p[n]), k.size);
        ((unsigned char *)p[n])[k.size - 1] = 1; /* the last byte is there */
        size_t line = colour_of(p[n]) / LINE;
        FM_CHECK(!seen[line]);
        seen[line] = true;
        n++;
    }
    FM_CHECK_EQ(n, 34); /* 16 KiB .. 5 MiB blocks, four classes per doubling */
    put_all(b, p, n);
    fm_bufpool_destroy(b);
}

/* A large block counts its colour page in every byte figure, live, cached
 * and mapped alike, and its mapping goes back whole at trim. */
FM_TEST(the_colour_page_is_counted_and_trim_unmaps_it)
{
    fm_bufpool_opts o = {.decay_ns = -1};
    fm_bufpool *b = new_bufpool(&o);
    void *p[4];
    get_coloured(b, 100000, p, 4);
    size_t u = fm_bufpool_usable_size(b, p[0]), span = u + 16 + page_size();
    struct fm_bufpool_stats s = bufpool_stats(b);
    FM_CHECK_EQ(s.bytes_live, 4 * span);
    FM_CHECK_EQ(s.bytes_mapped, 4 * span);
    put_all(b, p, 4);
    s = bufpool_stats(b);
    FM_CHECK_EQ(s.bytes_live, 0);
    FM_CHECK_EQ(s.bytes_cached, 4 * span);
    fm_bufpool_trim(b);
    s = bufpool_stats(b);
    FM_CHECK_EQ(s.bytes_mapped, 0);
    FM_CHECK_EQ(s.bytes_returned, 4 * span);
    /* the page in front of the header, and the page after the block */
    FM_CHECK_EQ(count_unmapped(p, 4, span), 4);
    fm_bufpool_destroy(b);
}

/* The decay unmaps a coloured block whole, by itself. */
FM_TEST(decay_unmaps_coloured_blocks_whole)
{
    fm_bufpool_opts o = {.decay_ns = DECAY_NS};
    fm_bufpool *b = new_bufpool(&o);
    void *p[16];
    get_coloured(b, 300000, p, 16);
    size_t span = fm_bufpool_usable_size(b, p[0]) + 16 + page_size();
    put_all(b, p, 16);
    FM_CHECK(FM_WAIT_UNTIL(bufpool_stats(b).bytes_mapped == 0, WAIT_MS));
    FM_CHECK_EQ(bufpool_stats(b).bytes_returned, 16 * span);
    /* The tick counts the blocks gone under the class lock and unmaps them
     * after it: the counters can come first. */
    FM_CHECK(FM_WAIT_UNTIL(count_unmapped(p, 16, span) == 16, WAIT_MS));
    fm_bufpool_destroy(b);
}

/* Puts past cache_limit unmap at once, the whole mapping too. */
FM_TEST(puts_past_the_cache_limit_unmap_coloured_blocks_whole)
{
    fm_bufpool_opts o = {.decay_ns = -1, .cache_limit = 1};
    fm_bufpool *b = new_bufpool(&o);
    void *p[16];
    get_coloured(b, 1 * MiB, p, 16);
    size_t span = fm_bufpool_usable_size(b, p[0]) + 16 + page_size();
    put_all(b, p, 16);
    struct fm_bufpool_stats s = bufpool_stats(b);
    /* the thread cache keeps one block of a class this large, the rest is dropped */
    FM_CHECK_EQ(s.bytes_mapped, span);
    FM_CHECK_EQ(s.dropped, 15);
    FM_CHECK_EQ(count_unmapped(p, 16, span), 15);
    fm_bufpool_destroy(b);
}

FM_TEST_MAIN()
