/* reduce.c: a rank's keys reduced one by one (hpool_values) and sorted into runs, on the team's threads. */
#define _GNU_SOURCE /* qsort_r */
#include "keyed_private.h"

#include <stdlib.h>
#include <string.h>

/* ---- Reduce: key by key, then sort ------------------------------------ */

struct hpool_values {
    unsigned char **entries; /* the entries of one key */
    size_t count, next;
};

int hpool_values_next(hpool_values *values, const void **data, size_t *size)
{
    if (values == NULL || data == NULL || size == NULL)
        return hpool__fail(HPOOL_EINVAL, "hpool_values_next: values, data or size is NULL");
    if (values->next == values->count)
        return HPOOL_EOF;
    unsigned char *entry = values->entries[values->next++];
    *data = hpool__entry_value(entry);
    *size = ((hpool__entry_header *)entry)->value_size;
    return 0;
}

static int compare_entry_keys(const void *a, const void *b)
{
    unsigned char *x = *(unsigned char *const *)a, *y = *(unsigned char *const *)b;
    return hpool__compare_bytes(hpool__entry_key(x), ((hpool__entry_header *)x)->key_size, hpool__entry_key(y), ((hpool__entry_header *)y)->key_size);
}

static hpool_pair entry_pair(unsigned char *entry)
{
    const hpool__entry_header *header = (const hpool__entry_header *)entry;
    return (hpool_pair){hpool__entry_key(entry), header->key_size, hpool__entry_value(entry), header->value_size};
}

/* The user's order, with pairs it calls equal ordered by bytes: the output
 * must not depend on which thread or rank sorted which pairs. */
int hpool__compare_pairs(const hpool_pair *a, const hpool_pair *b, const hpool_keyed_reducer *spec)
{
    if (spec->compare != NULL) {
        int order = spec->compare(a, b, spec->user);
        if (order != 0)
            return order;
    }
    int order = hpool__compare_bytes(a->key, a->key_size, b->key, b->key_size);
    return order != 0 ? order : hpool__compare_bytes(a->value, a->value_size, b->value, b->value_size);
}

static int compare_output_entries(const void *a, const void *b, void *spec)
{
    hpool_pair x = entry_pair(*(unsigned char *const *)a), y = entry_pair(*(unsigned char *const *)b);
    return hpool__compare_pairs(&x, &y, spec);
}

/* ---- The built-in order for counts ----------------------------------- */

static uint64_t count_of(const hpool_pair *pair)
{
    uint64_t count = 0;
    if (pair->value_size == sizeof count)
        memcpy(&count, pair->value, sizeof count);
    return count;
}

int hpool_compare_u64_desc(const hpool_pair *a, const hpool_pair *b, void *user)
{
    (void)user;
    uint64_t x = count_of(a), y = count_of(b);
    if (x != y)
        return x > y ? -1 : 1;
    return hpool__compare_bytes(a->key, a->key_size, b->key, b->key_size);
}

/* What the sort compares for hpool_compare_u64_desc, side by side: most
 * compares end at the count or inside the first 24 bytes, without a load
 * from the entry (a cache miss, in a table of 10 MB) or a call. Sorting a
 * word count's 262,500 words through the entries and a call was 6.6% of
 * its samples, and is 2.6% this way. Words of a text share long
 * beginnings (href="../library/...), so 8 bytes of key were not enough. */
#define SORT_PREFIX_WORDS 3
typedef struct count_item {
    uint64_t count;
    uint64_t prefix[SORT_PREFIX_WORDS]; /* the key's first bytes, big-endian, zero-padded */
    unsigned char *entry;
} count_item;

static count_item count_item_of(unsigned char *entry)
{
    hpool_pair pair = entry_pair(entry);
    count_item item = {count_of(&pair), {0}, entry};
    const unsigned char *key = pair.key;
    size_t size = pair.key_size < 8 * SORT_PREFIX_WORDS ? pair.key_size : 8 * SORT_PREFIX_WORDS;
    for (size_t i = 0; i < size; i++)
        item.prefix[i / 8] |= (uint64_t)key[i] << (56 - 8 * (i % 8));
    return item;
}

/* Whether a goes before b, as hpool__compare_pairs orders them with
 * hpool_compare_u64_desc: zero padding orders a prefix as memcmp and the
 * length do, so only keys equal in their first 24 bytes read the entries. */
static bool count_item_before(const count_item *a, const count_item *b)
{
    if (a->count != b->count)
        return a->count > b->count;
    for (int k = 0; k < SORT_PREFIX_WORDS; k++)
        if (a->prefix[k] != b->prefix[k])
            return a->prefix[k] < b->prefix[k];
    /* counts equal: then key bytes, then value bytes, as hpool__compare_pairs */
    hpool_pair x = entry_pair(a->entry), y = entry_pair(b->entry);
    int order = hpool__compare_bytes(x.key, x.key_size, y.key, y.key_size);
    return (order != 0 ? order : hpool__compare_bytes(x.value, x.value_size, y.value, y.value_size)) < 0;
}

/* A merge sort (n log n on any input: keys are the user's), insertion
 * sort below 16 items; sorted lands in items, scratch holds count / 2. */
static void sort_count_items(count_item *items, count_item *scratch, size_t count)
{
    if (count <= 16) {
        for (size_t i = 1; i < count; i++) {
            count_item item = items[i];
            size_t j = i;
            for (; j > 0 && count_item_before(&item, &items[j - 1]); j--)
                items[j] = items[j - 1];
            items[j] = item;
        }
        return;
    }
    size_t half = count / 2;
    sort_count_items(items, scratch, half);
    sort_count_items(items + half, scratch, count - half);
    if (!count_item_before(&items[half], &items[half - 1]))
        return; /* already in order */
    memcpy(scratch, items, half * sizeof *items);
    size_t i = 0, j = half, k = 0;
    while (i < half && j < count)
        items[k++] = count_item_before(&items[j], &scratch[i]) ? items[j++] : scratch[i++];
    while (i < half)
        items[k++] = scratch[i++];
}

/* Sorts index (entries) as hpool__compare_pairs does with spec. */
static void sort_output_entries(unsigned char **index, size_t count, const hpool_keyed_reducer *spec)
{
    count_item *items = NULL;
    if (spec->compare == hpool_compare_u64_desc && count > 1)
        items = hpool__malloc(count / 2 * sizeof *items + count * sizeof *items);
    if (items == NULL) { /* another order, or no memory for the fast one */
        qsort_r(index, count, sizeof *index, compare_output_entries, (void *)spec);
        return;
    }
    count_item *scratch = items + count;
    for (size_t i = 0; i < count; i++)
        items[i] = count_item_of(index[i]);
    sort_count_items(items, scratch, count);
    for (size_t i = 0; i < count; i++)
        index[i] = items[i].entry;
    free(items);
}

static unsigned char **entry_index(const hpool__pair_table *table)
{
    unsigned char **index = hpool__malloc((table->count + 1) * sizeof *index);
    if (index == NULL)
        return NULL;
    size_t n = 0;
    HPOOL__FOR_EACH_ENTRY(table, entry)
    index[n++] = entry;
    return index;
}

/* Reduces the keys of count entries into output (a plain list): each entry
 * is a key of its own in a combining table; otherwise entries are grouped
 * by key first. */
static int reduce_entries(const hpool_keyed_reducer *spec, bool combining, unsigned char **index, size_t count,
                          const hpool__argument *argument, hpool__pair_table *output, int *code)
{
    if (!combining && count > 1) /* index may be NULL for none */
        qsort(index, count, sizeof *index, compare_entry_keys);
    hpool_emitter out = {.table = output, .argument = argument != NULL ? *argument : (hpool__argument){NULL, 0}};
    int rc = 0;
    for (size_t start = 0, end; start < count && rc == 0; start = end) {
        end = start + 1;
        while (end < count && compare_entry_keys(&index[start], &index[end]) == 0)
            end++;
        hpool_values values = {index + start, end - start, 0};
        const hpool__entry_header *header = (const hpool__entry_header *)index[start];
        hpool__reducing = (hpool__running_reduce){spec->name, hpool__entry_key(index[start]), header->key_size};
        int result = spec->reduce(hpool__entry_key(index[start]), header->key_size, &values, &out, spec->user);
        hpool__reducing.reducer = NULL;
        if (result != 0) {
            *code = result;
            rc = HPOOL_EFAILED;
        } else if (out.error != 0) {
            rc = out.error;
        }
    }
    return rc;
}

/* Reduces every key of table into output (a plain list). Without a reduce
 * function the pairs pass through. */
int hpool__pair_table_reduce_into(hpool__pair_table *table, hpool__pair_table *output, const hpool__argument *argument,
                                  int *code)
{
    const hpool_keyed_reducer *spec = table->spec;
    if (spec->reduce == NULL)
        return hpool__pair_table_merge(output, table);
    unsigned char **index = entry_index(table);
    if (index == NULL)
        return HPOOL_ENOMEM;
    int rc = reduce_entries(spec, table->combining, index, table->count, argument, output, code);
    free(index);
    return rc;
}

static int compare_entry_keys_r(const void *a, const void *b, void *unused)
{
    (void)unused;
    return compare_entry_keys(a, b);
}

static int encode_entry(hpool__buffer *out, unsigned char *entry)
{
    hpool_pair pair = entry_pair(entry);
    return hpool__pair_encode(out, pair.key, (uint32_t)pair.key_size, pair.value, (uint32_t)pair.value_size);
}

/* Encodes the table's pairs sorted by key bytes: a spilled run. */
int hpool__pair_table_encode_by_key(const hpool__pair_table *table, hpool__buffer *out)
{
    unsigned char **index = entry_index(table);
    if (index == NULL)
        return HPOOL_ENOMEM;
    qsort_r(index, table->count, sizeof *index, compare_entry_keys_r, NULL);
    int rc = 0;
    for (size_t i = 0; i < table->count && rc == 0; i++)
        rc = encode_entry(out, index[i]);
    free(index);
    return rc;
}

/* ---- Reduce and sort on the team's threads ------------------------------ */

/* Tables smaller than this are reduced and sorted by one thread: waking the
 * others would cost more than it saves. */
#define PARALLEL_MIN_ENTRIES 8192

/* One thread's share of the keys: a table of its own, or the keys of one
 * table whose hash picks it. */
typedef struct reduce_share {
    hpool__pair_table output; /* its keys reduced, when there is a reduce function */
    hpool__buffer run;        /* its pairs encoded in output order */
    int rc, code;
} reduce_share;

typedef struct reduce_job {
    const hpool__pair_table *tables; /* one, split by hash, or one per part */
    int table_count;
    const hpool_keyed_reducer *spec; /* the output order, and the reduce function */
    bool reduce;
    const hpool__argument *argument; /* the call's, for the reduce function */
    reduce_share *shares;
} reduce_job;

static bool in_share(const unsigned char *entry, int part, int parts)
{
    return parts == 1 || hpool__share_of(((const hpool__entry_header *)entry)->hash, parts) == part;
}

static size_t encoded_size(const unsigned char *entry)
{
    const hpool__entry_header *header = (const hpool__entry_header *)entry;
    return 2 * sizeof(uint32_t) + header->key_size + header->value_size;
}

/* Selects, reduces, sorts and encodes one share. */
static int run_share(reduce_job *job, reduce_share *share, int part, int parts)
{
    const hpool__pair_table *table = job->table_count == 1 ? job->tables : &job->tables[part];
    if (job->table_count > 1)
        parts = 1; /* the whole table is this share */
    size_t capacity = table->count / (size_t)parts + table->count / (4 * (size_t)parts) + 16, count = 0;
    unsigned char **index = hpool__malloc(capacity * sizeof *index);
    if (index == NULL)
        return HPOOL_ENOMEM;
    HPOOL__FOR_EACH_ENTRY(table, entry)
    {
        if (!in_share(entry, part, parts))
            continue;
        if (count == capacity) {
            unsigned char **grown = hpool__grow_array(index, &capacity, count, sizeof *index);
            if (grown == NULL) {
                free(index);
                return HPOOL_ENOMEM;
            }
            index = grown;
        }
        index[count++] = entry;
    }
    if (job->reduce) {
        hpool__pair_table_init(&share->output, NULL);
        int rc = reduce_entries(job->spec, table->combining, index, count, job->argument, &share->output,
                                &share->code);
        free(index);
        if (rc != 0)
            return rc;
        if ((index = entry_index(&share->output)) == NULL)
            return HPOOL_ENOMEM;
        count = share->output.count;
    }
    sort_output_entries(index, count, job->spec);
    size_t bytes = 0;
    for (size_t i = 0; i < count; i++)
        bytes += encoded_size(index[i]);
    int rc = hpool__buffer_reserve(&share->run, bytes);
    for (size_t i = 0; i < count && rc == 0; i++)
        rc = encode_entry(&share->run, index[i]);
    free(index);
    return rc;
}

static void run_share_part(void *arg, int part, int parts)
{
    reduce_job *job = arg;
    job->shares[part].rc = run_share(job, &job->shares[part], part, parts);
}

/* Appends the shares' runs to out, packed: the run count, each run's size
 * (u64s), then the runs one after another. */
static int pack_runs(const reduce_share *shares, int parts, hpool__buffer *out)
{
    uint64_t count = (uint64_t)parts, bytes = 0;
    for (int p = 0; p < parts; p++)
        bytes += shares[p].run.size;
    if (hpool__buffer_reserve(out, (1 + count) * sizeof count + bytes) != 0)
        return HPOOL_ENOMEM;
    hpool__buffer_append(out, &count, sizeof count);
    for (int p = 0; p < parts; p++) {
        uint64_t size = shares[p].run.size;
        hpool__buffer_append(out, &size, sizeof size);
    }
    for (int p = 0; p < parts; p++)
        hpool__buffer_append(out, shares[p].run.data, shares[p].run.size);
    return 0;
}

/* Sorts (reducing first if asked) the tables' entries on the team's
 * threads, a share each: one table per share, or one table split by hash;
 * appends the shares' sorted runs to out. */
static int sort_on_team(const hpool__pair_table *tables, int table_count, const hpool_keyed_reducer *spec,
                        bool reduce, const hpool__argument *argument, hpool__team *team, hpool__buffer *out,
                        int *code)
{
    int parts = table_count > 1 ? table_count : tables->count < PARALLEL_MIN_ENTRIES ? 1 : team->thread_count;
    reduce_share *shares = hpool__calloc((size_t)parts, sizeof *shares);
    if (shares == NULL)
        return HPOOL_ENOMEM;
    reduce_job job = {tables, table_count, spec, reduce, argument, shares};
    hpool__team_parallel(team, run_share_part, &job, parts);
    int rc = 0;
    for (int p = 0; p < parts && rc == 0; p++)
        if ((rc = shares[p].rc) == HPOOL_EFAILED)
            *code = shares[p].code;
    if (rc == 0)
        rc = pack_runs(shares, parts, out);
    for (int p = 0; p < parts; p++) {
        hpool__buffer_release(&shares[p].run);
        hpool__pair_table_release(&shares[p].output);
    }
    free(shares);
    return rc;
}

int hpool__pair_table_encode_sorted(const hpool__pair_table *table, const hpool_keyed_reducer *spec,
                                    hpool__team *team, hpool__buffer *out)
{
    int unused = 0;
    return sort_on_team(table, 1, spec, false, NULL, team, out, &unused);
}

int hpool__pair_tables_reduce(const hpool__pair_table *shares, int count, hpool__team *team,
                              const hpool__argument *argument, hpool__buffer *out, int *code)
{
    const hpool_keyed_reducer *spec = shares->spec;
    return sort_on_team(shares, count, spec, spec->reduce != NULL, argument, team, out, code);
}
