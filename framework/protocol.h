/* protocol.h: the messages ranks exchange, their order and their layouts: the protocol's specification. */
#ifndef HPOOL_PROTOCOL_H
#define HPOOL_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

/* Every message of a pool travels on the pool's own communicator (a
 * duplicate of the caller's), with MPI tag HPOOL__TAG_BASE + its type.
 *
 * Conversation, for one call on the root R and a serving rank S:
 *
 *   R -> S  BATCH         chunks of items to run (after S said it is short,
 *                         or to fill it at the start)
 *   S -> R  RESULT        a finished batch: results, failures, and S's count
 *                         of chunks completed
 *   S -> R  CREDIT        S holds fewer chunks than the last batch's
 *                         report_below while a batch still runs
 *   R -> S  CANCEL        the call was canceled: skip its chunks
 *   keyed calls, once every map batch is collected:
 *   R -> S  SHUFFLE       partition your pairs
 *   S <-> T PAIRS         the pairs T owns, in pieces; the last is marked
 *   S -> R  KEYED_RESULT  S's reduced keys as sorted runs
 *   at the end:
 *   R -> S  STOP          the pool is joining: S's engine ends
 *   S -> R  STOPPED       after S's last message: R has received everything
 *                         S sent, so S's sends complete and R may finish
 *   S -> R  ERROR         S's engine stopped on an error: nothing it holds
 *                         will come back, and nothing follows (as STOPPED)
 *   all the while:
 *   S -> R  HEARTBEAT     at least every second (HPOOL__HEARTBEAT_NS), from
 *                         S's engine thread, which never runs map
 *                         functions: a rank silent for the stall timeout
 *                         is stopped, hung or cut off, not busy
 *
 * MPI keeps the order of messages between two ranks on one tag, not across
 * tags; nothing here depends on more than that: a RESULT carries its own
 * counts, and PAIRS pieces are counted, not ordered.
 *
 * Layout. Every message starts with an envelope: magic, protocol version,
 * type. Then a fixed header (a struct below, in the sender's byte order,
 * with explicit padding), then a variable part. A receiver checks the
 * envelope and the sizes before it reads anything, and a message that
 * fails is HPOOL_EPEER. All ranks of a pool run one build: pool creation
 * compares the versions (HPOOL_EVERSION names both), so a mismatch never
 * reaches a message. A magic read in the wrong byte order shows as a
 * different magic.
 *
 * Change a layout: change its struct and its encode/decode here, and add
 * one to HPOOL__PROTOCOL_VERSION. */

#define HPOOL__PROTOCOL_MAGIC 0x4c4f4f50u /* "POOL" in little-endian memory */
#define HPOOL__PROTOCOL_VERSION 7u /* 1: 0.1.0 without envelopes; 2: no call argument; 3: no heartbeat; 4: no stop or checkpoint; 5: a failure per item; 6: STOP without a level */
#define HPOOL__TAG_BASE 7100
/* How often a serving rank's engine says it is alive, at least; the stall
 * timeout is counted in these (a timeout under four of them would mistake
 * a scheduling hiccup for a stall), so it is at most a quarter of it. */
#define HPOOL__HEARTBEAT_NS 1000000000u

enum hpool__message_type {
    HPOOL__MSG_BATCH = 1,
    HPOOL__MSG_RESULT,
    HPOOL__MSG_CANCEL,
    HPOOL__MSG_STOP,
    HPOOL__MSG_SHUFFLE,
    HPOOL__MSG_PAIRS,
    HPOOL__MSG_KEYED_RESULT,
    HPOOL__MSG_CREDIT,
    HPOOL__MSG_ERROR,
    HPOOL__MSG_STOPPED,
    HPOOL__MSG_HEARTBEAT,
    HPOOL__MSG_STOP_REQUEST,  /* a rank was asked to stop (hpool_pool_stop) */
    HPOOL__MSG_CHECKPOINT,    /* root: write your keyed pairs of a call to a file */
    HPOOL__MSG_CHECKPOINTED,  /* a rank wrote them, or failed to */
    /* Inside transport.c: a message too big for one MPI count travels as a
     * LARGE header and then PIECEs of raw bytes, in order, on one tag. */
    HPOOL__MSG_LARGE,
    HPOOL__MSG_PIECE,
    HPOOL__MSG_TYPE_END
};

typedef struct hpool__envelope {
    uint32_t magic;
    uint16_t version;
    uint16_t type;
} hpool__envelope;

/* A message received: type (from its tag), source and its bytes, owned by
 * the receiver until a decode function takes them. */
typedef struct hpool__message {
    int type;
    int source;
    void *data;
    size_t size;
} hpool__message;

/* ---- Fixed headers ---------------------------------------------------- */

/* BATCH: the header, then column_count u64 column sizes (COLUMNS), then
 * for RECORDS count + 1 u64 offsets and count u64 sizes, then data_size
 * bytes of items (FIXED, COLUMNS rows) or records (each 8-byte aligned and
 * NUL-terminated), then zero padding to a multiple of 8 bytes and
 * argument_size bytes of the call's argument. chunk_count must equal
 * ceil(count / chunksize). Every batch carries the argument, since a rank
 * keeps nothing of a call between its batches. */
typedef struct hpool__batch_header {
    uint32_t call_id;
    int32_t function, reducer, mode, kind;
    uint32_t reserved;
    uint64_t result_size, first, count, chunksize, chunk_count, block_size, report_below;
    int64_t range_first;
    uint64_t item_size, column_count, data_size, argument_size;
} hpool__batch_header;

/* RESULT: the header, then failure_count {u64 index, i64 code}, then
 * data_size bytes: count × result_size (FIXED_RESULT), count + 1 u64
 * offsets and the records (RECORD_RESULT), or partials × result_size
 * (REDUCE). chunks_completed is the sender's total, for the root's credit. */
typedef struct hpool__result_header {
    uint32_t call_id;
    int32_t mode, reducer;
    int32_t whole_failed; /* not 0: every item failed with it; no data, no failure list */
    uint64_t first, count, chunk_count, result_size, block_size, timed_ns, timed_items, failure_count, data_size;
    uint64_t chunks_completed;
} hpool__result_header;

typedef struct hpool__cancel_header {
    uint32_t call_id;
    uint32_t reserved;
} hpool__cancel_header;

/* SHUFFLE: the header, then argument_size bytes of the call's argument,
 * for the reduce functions of a rank that may have run no batch of it. */
typedef struct hpool__shuffle_header {
    uint32_t call_id;
    uint32_t keyed; /* the keyed reducer's index */
    uint64_t argument_size;
} hpool__shuffle_header;

typedef struct hpool__credit_header {
    uint64_t chunks_completed;
} hpool__credit_header;

typedef struct hpool__error_header {
    int32_t code; /* negative: the HPOOL_E* code the engine stopped on */
    uint32_t reserved;
} hpool__error_header;

/* PAIRS: the header, then encoded pairs (see pair_table.c). */
typedef struct hpool__pairs_header {
    uint32_t call_id;
    int32_t keyed;
    uint32_t last; /* the sender's last piece for this rank */
    uint32_t reserved;
} hpool__pairs_header;

/* KEYED_RESULT: the header, then packed sorted runs (see run_merge.c). */
typedef struct hpool__run_header {
    uint32_t call_id;
    int32_t status; /* 0, HPOOL_EFAILED (then code) or an error */
    int32_t code;
    uint32_t reserved;
    uint64_t spilled_bytes;
} hpool__run_header;

/* STOP_REQUEST (a rank to the root) and STOP (the root to every rank, as
 * its engine ends: level 2 if the pool was stopped at once, else 0). */
typedef struct hpool__stop_request_header {
    int32_t level;  /* 1: drain, 2: at once */
    int32_t signal; /* the signal that asked, or 0 */
} hpool__stop_request_header;

/* CHECKPOINT: the header, then path_size bytes of the file's path (no NUL). */
typedef struct hpool__checkpoint_header {
    uint32_t call_id;
    uint32_t keyed;
    uint64_t generation;
    uint64_t path_size;
} hpool__checkpoint_header;

/* CHECKPOINTED: the header, then detail_size bytes of the error's detail. */
typedef struct hpool__checkpointed_header {
    uint32_t call_id;
    int32_t code;
    uint64_t generation;
    uint64_t bytes, checksum; /* of the file written */
    uint64_t detail_size;
} hpool__checkpointed_header;

/* LARGE: the type of the message that follows in pieces, its size, and
 * the size of every piece but the last. */
typedef struct hpool__large_header {
    int32_t type;
    uint32_t reserved;
    uint64_t size, piece_size;
} hpool__large_header;

/* ---- Encoding and decoding -------------------------------------------- */

/* Where a message's fixed header starts, and where its variable part does:
 * buffers for messages with a variable part are built with this much room
 * in front, then the envelope and header are written into it. */
#define HPOOL__HEADER_OFFSET sizeof(hpool__envelope)
#define HPOOL__BODY_OFFSET(header_type) (sizeof(hpool__envelope) + sizeof(header_type))

/* Writes the envelope of type and header (header_size bytes) at the start
 * of message, which has room for both. */
void hpool__message_write_header(void *message, int type, const void *header, size_t header_size);
/* A message of its envelope and header alone: *buffer is malloc'd. 0 or
 * HPOOL_ENOMEM. */
int hpool__message_encode(int type, const void *header, size_t header_size, void **buffer, size_t *size);
struct hpool__transport;
/* Encodes a message of its envelope and header alone and sends it to dest,
 * or to every rank but except (send_to_all). 0, HPOOL_ENOMEM or HPOOL_EMPI. */
int hpool__message_send(struct hpool__transport *transport, int dest, int type, const void *header,
                        size_t header_size);
int hpool__message_send_to_all(struct hpool__transport *transport, int except, int type, const void *header,
                               size_t header_size);
/* Checks a received message's envelope against its tag, and that it holds
 * at least header_size bytes of header, which it copies out; *body and
 * *body_size are what follows. 0 or HPOOL_EPEER. */
int hpool__message_decode(const hpool__message *message, void *header, size_t header_size,
                          const unsigned char **body, size_t *body_size);

struct hpool__batch;
/* BATCH, from the batch as cut on the root. 0 or HPOOL_ENOMEM. */
int hpool__batch_encode(const struct hpool__batch *batch, void **buffer, size_t *size);
/* The batch returned points into the message's data, which it now owns
 * (also on error, when the data is freed). 0, HPOOL_EPEER or HPOOL_ENOMEM. */
int hpool__batch_decode(hpool__message *message, struct hpool__batch **batch);
/* RESULT of a finished batch; chunks_completed: the sender's count. */
int hpool__result_encode(struct hpool__batch *batch, uint64_t chunks_completed, void **buffer, size_t *size);
/* As hpool__batch_decode, for a RESULT. */
int hpool__result_decode(hpool__message *message, struct hpool__batch **batch);

#endif
