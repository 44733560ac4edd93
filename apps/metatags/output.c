/* output.c: writes matches and counts as raw or escaped tab-separated lines or JSON lines, and quotes names for stderr. */
#define _GNU_SOURCE /* fwrite_unlocked */
#include "metatags.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* One field of --format tsv: PostgreSQL's COPY text format, reduced to the
 * four bytes that would make a line ambiguous. A backslash is always
 * doubled, so no other escape (\N, \x41, \.) can appear by accident. */
static void output_tsv_field(FILE *out, const uint8_t *data, size_t size)
{
    size_t plain = 0;
    for (size_t i = 0; i < size; i++) {
        const char *escape;
        switch (data[i]) {
        case '\t': escape = "\\t"; break;
        case '\n': escape = "\\n"; break;
        case '\r': escape = "\\r"; break;
        case '\\': escape = "\\\\"; break;
        default: continue;
        }
        fwrite(data + plain, 1, i - plain, out);
        fputs(escape, out);
        plain = i + 1;
    }
    fwrite(data + plain, 1, size - plain, out);
}

char *output_quote_name(const char *name)
{
    size_t length = strlen(name);
    char *quoted = malloc(4 * length + 1);
    if (quoted == NULL)
        return NULL;
    char *at = quoted;
    for (size_t i = 0; i < length; i++) {
        unsigned char byte = (unsigned char)name[i];
        switch (byte) {
        case '\t': *at++ = '\\'; *at++ = 't'; break;
        case '\n': *at++ = '\\'; *at++ = 'n'; break;
        case '\r': *at++ = '\\'; *at++ = 'r'; break;
        case '\\': *at++ = '\\'; *at++ = '\\'; break;
        default:
            if (byte < 0x20 || byte == 0x7F)
                at += sprintf(at, "\\x%02X", byte);
            else
                *at++ = (char)byte;
        }
    }
    *at = '\0';
    return quoted;
}

void output_json_string(FILE *out, const uint8_t *data, size_t size)
{
    putc('"', out);
    size_t plain = 0; /* start of the bytes not yet written */
    size_t i = 0;
    while (i < size) {
        uint8_t byte = data[i];
        if (byte >= 0x20 && byte != '"' && byte != '\\' && byte < 0x80) {
            i++;
            continue;
        }
        size_t length = byte >= 0x80 ? bytes_utf8_sequence(data + i, size - i) : 0;
        if (length > 0) {
            i += length;
            continue;
        }
        fwrite(data + plain, 1, i - plain, out);
        switch (byte) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        case '\b': fputs("\\b", out); break;
        case '\f': fputs("\\f", out); break;
        default:
            /* Control characters as \u00XX; a byte that is not part of valid
             * UTF-8 as the lone surrogate U+DC00+byte, Python's
             * "surrogateescape": decoding the string with that handler gives
             * back the exact bytes. */
            fprintf(out, "\\u%04x", byte < 0x80 ? (unsigned)byte : 0xDC00u + byte);
        }
        i++;
        plain = i;
    }
    fwrite(data + plain, 1, size - plain, out);
    putc('"', out);
}

void output_match(FILE *out, enum output_format format, const char *path, size_t path_size, const uint8_t *match,
                  size_t match_size)
{
    if (format == FORMAT_RAW) {
        /* The caller holds out's lock: four locked calls a match were 170,000
         * lock round trips for the corpus's listing, on the thread that
         * prints while the workers read. */
        fwrite_unlocked(path, 1, path_size, out);
        putc_unlocked('\t', out);
        fwrite_unlocked(match, 1, match_size, out);
        putc_unlocked('\n', out);
        return;
    }
    if (format == FORMAT_TSV) {
        output_tsv_field(out, (const uint8_t *)path, path_size);
        putc('\t', out);
        output_tsv_field(out, match, match_size);
        putc('\n', out);
        return;
    }
    fputs("{\"path\":", out);
    output_json_string(out, (const uint8_t *)path, path_size);
    fputs(",\"match\":", out);
    output_json_string(out, match, match_size);
    fputs("}\n", out);
}

void output_count(FILE *out, enum output_format format, const uint8_t *match, size_t match_size, uint64_t count)
{
    if (format != FORMAT_JSONL) {
        fprintf(out, "%" PRIu64 "\t", count);
        if (format == FORMAT_TSV)
            output_tsv_field(out, match, match_size);
        else
            fwrite(match, 1, match_size, out);
        putc('\n', out);
        return;
    }
    fputs("{\"match\":", out);
    output_json_string(out, match, match_size);
    fprintf(out, ",\"count\":%" PRIu64 "}\n", count);
}
